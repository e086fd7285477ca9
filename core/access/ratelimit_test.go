package access_test

import (
	"testing"
	"time"

	"github.com/portico-dev/portico/core/access"
)

func TestRateLimiter(t *testing.T) {
	t.Parallel()
	l := access.NewRateLimiter(2, 4) // 2/s, bursts of 4
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
