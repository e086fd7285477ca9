// Package ratelimit is a token bucket per key, in memory, with a bounded
// number of keys: what an unauthenticated caller can make it hold is
// capped, and idle buckets are forgotten.
package ratelimit

import (
	"math"
	"sync"
	"time"
)

// MaxKeys is how many buckets a Limiter holds at most. Beyond it, a new
// key first makes the limiter forget the buckets that have refilled, then
// (if that freed nothing) evicts an arbitrary one: the evicted key starts
// over with a full bucket, memory stays bounded.
const MaxKeys = 100_000

// Limiter is a token bucket per key (one per process: with N replicas a
// key gets up to N times the rate). It is safe for concurrent use.
type Limiter struct {
	rate  float64 // tokens per second
	burst float64

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	tokens float64 // may be negative: debt (see Spend)
	at     time.Time
}

// New allows rate requests per second per key with bursts of burst
// (default 2×rate, at least 1).
func New(rate float64, burst int) *Limiter {
	b := float64(burst)
	if b <= 0 {
		b = math.Max(1, 2*rate)
	}
	return &Limiter{rate: rate, burst: b, buckets: map[string]*bucket{}}
}

// Allow takes one token from key's bucket. When it is empty it returns
// false and how long until a token is available.
func (l *Limiter) Allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucket(key, now)
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, l.wait(b)
}

// Wait reports how long until key's bucket holds a token (0: now). It
// allocates nothing: a key without a bucket has a full one.
func (l *Limiter) Wait(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		return 0
	}
	l.refill(b, now)
	if b.tokens >= 1 {
		return 0
	}
	return l.wait(b)
}

// Spend takes one token from key's bucket even when it is empty: the
// bucket then owes it, down to minus the burst. Callers that can only
// charge a request once it is answered (so that a burst of concurrent
// requests all passed Wait) make the key wait for what they took.
func (l *Limiter) Spend(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucket(key, now)
	b.tokens = math.Max(b.tokens-1, -l.burst)
}

// Forget drops key's bucket.
func (l *Limiter) Forget(key string) {
	l.mu.Lock()
	delete(l.buckets, key)
	l.mu.Unlock()
}

// Len is how many buckets the limiter holds.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// bucket returns key's bucket refilled to now, creating it (full) when
// missing.
func (l *Limiter) bucket(key string, now time.Time) *bucket {
	if now.Sub(l.swept) > time.Minute {
		l.sweep(now)
	}
	b := l.buckets[key]
	if b != nil {
		l.refill(b, now)
		return b
	}
	if len(l.buckets) >= MaxKeys {
		if now.Sub(l.swept) > time.Second {
			l.sweep(now)
		}
		for k := range l.buckets {
			if len(l.buckets) < MaxKeys {
				break
			}
			delete(l.buckets, k)
		}
	}
	b = &bucket{tokens: l.burst, at: now}
	l.buckets[key] = b
	return b
}

func (l *Limiter) refill(b *bucket, now time.Time) {
	if elapsed := now.Sub(b.at).Seconds(); elapsed > 0 {
		b.tokens = math.Min(l.burst, b.tokens+elapsed*l.rate)
		b.at = now
	}
}

func (l *Limiter) wait(b *bucket) time.Duration {
	return time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// sweep forgets the buckets that have refilled completely.
func (l *Limiter) sweep(now time.Time) {
	l.swept = now
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.at).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
}
