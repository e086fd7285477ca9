package main

import (
	"context"
	"sync"
	"time"
)

// change is the latest state of one object: an upsert or a deletion of
// a raw item of kind (encoded when sent: a workload's service relation
// is looked up then).
type change struct {
	key     string
	kind    string
	item    any
	deleted bool
}

// changeQueue coalesces informer events per object until a watch call
// takes them: only an object's latest state is sent, in the order objects
// first changed. The batch last taken is kept until the host acknowledges
// it (by passing its cursor), so a lost answer is sent again.
type changeQueue struct {
	mu      sync.Mutex
	order   []string
	pending map[string]change
	wake    chan struct{} // closed and replaced when a change arrives

	// The batch sent under cursor seq, until the host passes seq back.
	seq     uint64
	unacked []change
}

func newChangeQueue() *changeQueue {
	return &changeQueue{pending: map[string]change{}, wake: make(chan struct{})}
}

// push records a change, replacing an older one of the same object.
func (q *changeQueue) push(c change) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pushLocked(c)
}

func (q *changeQueue) pushLocked(c change) {
	if _, ok := q.pending[c.key]; !ok {
		q.order = append(q.order, c.key)
	}
	q.pending[c.key] = c
	select {
	case <-q.wake:
	default:
		close(q.wake)
	}
}

// current returns the number of the last batch taken.
func (q *changeQueue) current() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.seq
}

// Len returns how many objects have pending changes.
func (q *changeQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}

// ack settles the batch sent before a call that passes cursor seq: seq
// is the last batch's number (it arrived) or an older one (the answer was
// lost: its changes are queued again unless newer ones replaced them).
func (q *changeQueue) ack(seq uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if seq < q.seq {
		for _, c := range q.unacked {
			if _, newer := q.pending[c.key]; !newer {
				q.pushLocked(c)
			}
		}
	}
	q.unacked = nil
}

// take waits until changes are pending (or wait has passed, or ctx is
// done), lets more arrive for up to linger while fewer than max are
// pending, and takes at most max of them as the next batch. seq numbers
// the batch; it is unchanged when the batch is empty.
func (q *changeQueue) take(ctx context.Context, wait, linger time.Duration, max int) (batch []change, seq uint64) {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		q.mu.Lock()
		n, wake := len(q.pending), q.wake
		q.mu.Unlock()
		if n > 0 {
			break
		}
		select {
		case <-wake:
			continue
		case <-deadline.C:
		case <-ctx.Done():
		}
		q.mu.Lock()
		defer q.mu.Unlock()
		return nil, q.seq
	}
	lingerT := time.NewTimer(linger)
	defer lingerT.Stop()
	for {
		q.mu.Lock()
		n, wake := len(q.pending), q.wake
		if n >= max {
			q.mu.Unlock()
			break
		}
		// Re-arm: the next push closes a fresh channel.
		if isClosed(wake) {
			q.wake = make(chan struct{})
			wake = q.wake
		}
		q.mu.Unlock()
		select {
		case <-wake:
			continue
		case <-lingerT.C:
		case <-ctx.Done():
		}
		break
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	n := min(max, len(q.order))
	batch = make([]change, 0, n)
	for _, key := range q.order[:n] {
		batch = append(batch, q.pending[key])
		delete(q.pending, key)
	}
	q.order = append(q.order[:0:0], q.order[n:]...)
	if len(q.pending) == 0 && isClosed(q.wake) {
		q.wake = make(chan struct{})
	}
	q.seq++
	q.unacked = batch
	return batch, q.seq
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
