package ratelimit_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/portico-dev/portico/internal/ratelimit"
)

func TestLimiter(t *testing.T) {
	t.Parallel()
	l := ratelimit.New(2, 4) // 2/s, bursts of 4
	now := time.Unix(1000, 0)
	for i := range 4 {
		if ok, _ := l.Allow("a", now); !ok {
			t.Fatalf("burst request %d refused", i)
		}
	}
	ok, wait := l.Allow("a", now)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("over the burst: ok %v, wait %v", ok, wait)
	}
	if ok, _ := l.Allow("b", now); !ok {
		t.Fatal("keys share a bucket")
	}
	if ok, _ := l.Allow("a", now.Add(500*time.Millisecond)); !ok {
		t.Fatal("not refilled after the wait")
	}
	if ok, _ := l.Allow("a", now.Add(500*time.Millisecond)); ok {
		t.Fatal("refilled more than the rate")
	}
	// An idle bucket refills to the burst, not beyond.
	later := now.Add(time.Hour)
	for i := range 4 {
		if ok, _ := l.Allow("a", later); !ok {
			t.Fatalf("refilled burst request %d refused", i)
		}
	}
	if ok, _ := l.Allow("a", later); ok {
		t.Fatal("bucket exceeded its burst")
	}
}

// TestLimiterWaitAllocatesNothing: asking about unknown keys holds no
// memory.
func TestLimiterWaitAllocatesNothing(t *testing.T) {
	t.Parallel()
	l := ratelimit.New(1, 1)
	now := time.Unix(1000, 0)
	for i := range 1000 {
		if w := l.Wait(strconv.Itoa(i), now); w != 0 {
			t.Fatalf("unknown key waits %v", w)
		}
	}
	if n := l.Len(); n != 0 {
		t.Fatalf("%d buckets after Wait on unknown keys", n)
	}
}

// TestLimiterSpendOwes: requests charged after the fact put the bucket in
// debt (at most the burst), which Wait reports.
func TestLimiterSpendOwes(t *testing.T) {
	t.Parallel()
	l := ratelimit.New(1, 2)
	now := time.Unix(1000, 0)
	for range 10 {
		l.Spend("a", now)
	}
	// 2 - 10 floors at -2: 3 tokens to a usable one.
	if w := l.Wait("a", now); w != 3*time.Second {
		t.Fatalf("wait %v after spending 10 of 2, want 3s", w)
	}
	if w := l.Wait("a", now.Add(3*time.Second)); w != 0 {
		t.Fatalf("still waiting %v once the debt is repaid", w)
	}
	if l.Wait("b", now) != 0 {
		t.Fatal("debt shared between keys")
	}
}

// TestLimiterBounded: a flood of distinct keys never holds more than
// MaxKeys buckets, and refilled buckets are forgotten.
func TestLimiterBounded(t *testing.T) {
	t.Parallel()
	l := ratelimit.New(10, 10)
	now := time.Unix(1000, 0)
	for i := range ratelimit.MaxKeys + 5000 {
		l.Allow(strconv.Itoa(i), now)
	}
	if n := l.Len(); n > ratelimit.MaxKeys {
		t.Fatalf("%d buckets, more than %d", n, ratelimit.MaxKeys)
	}
	l.Allow("late", now.Add(2*time.Minute)) // every other bucket has refilled
	if n := l.Len(); n != 1 {
		t.Fatalf("%d buckets after the sweep, want 1", n)
	}
	l.Forget("late")
	if n := l.Len(); n != 0 {
		t.Fatalf("%d buckets after Forget", n)
	}
}
