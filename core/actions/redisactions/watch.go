package redisactions

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// subscribeTimeout bounds how long starting the shared subscription may
// take before WatchRun gives up.
const subscribeTimeout = 5 * time.Second

// WatchRun signals on changed whenever a newer revision of run id may
// have been stored, by any process sharing this Redis: after each SaveRun
// that wrote one, and after the subscription was re-established (a
// notification may have been lost meanwhile). Signals coalesce: one
// pending signal stands for any number of writes, so the watcher re-reads
// the record. WatchRun returns once the subscription is active: a GetRun
// made after it returns misses no later write. stop ends the watch (it is
// also ended when ctx is done); changed is never closed.
//
// Every watch of a Store shares one Redis subscription (and connection),
// held while any watch is open, so open streams do not drain the pool.
func (s *Store) WatchRun(ctx context.Context, id string) (changed <-chan struct{}, stop func(), err error) {
	return s.watches.watch(ctx, id)
}

// runWatches multiplexes the run watches of a Store over one subscription
// to the channel SaveRun publishes run ids on.
type runWatches struct {
	rdb     redis.UniversalClient
	channel string

	mu       sync.Mutex
	watchers map[string]map[chan struct{}]struct{} // run id → signal channels
	n        int                                   // open watches
	sub      *subscription                         // nil while nobody watches
}

// subscription is one run of the shared subscription.
type subscription struct {
	ps    *redis.PubSub
	ready chan struct{} // closed once subscribed or failed
	err   error         // why it failed; set before ready is closed
}

func newRunWatches(rdb redis.UniversalClient, channel string) *runWatches {
	return &runWatches{rdb: rdb, channel: channel, watchers: map[string]map[chan struct{}]struct{}{}}
}

func (w *runWatches) watch(ctx context.Context, id string) (<-chan struct{}, func(), error) {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	if w.watchers[id] == nil {
		w.watchers[id] = map[chan struct{}]struct{}{}
	}
	w.watchers[id][ch] = struct{}{}
	w.n++
	sub := w.sub
	if sub == nil {
		// Subscribe(ctx) without channels does no I/O: the goroutine
		// subscribes, and stop can close ps at any time.
		sub = &subscription{ps: w.rdb.Subscribe(context.Background()), ready: make(chan struct{})}
		w.sub = sub
		go w.run(sub)
	}
	w.mu.Unlock()

	var once sync.Once
	unwatch := func() { once.Do(func() { w.unwatch(id, ch) }) }
	select {
	case <-sub.ready:
	case <-ctx.Done():
		unwatch()
		return nil, nil, ctx.Err()
	}
	if sub.err != nil {
		unwatch()
		return nil, nil, fmt.Errorf("watch run %s: %w", id, sub.err)
	}
	release := context.AfterFunc(ctx, unwatch)
	return ch, func() { release(); unwatch() }, nil
}

func (w *runWatches) unwatch(id string, ch chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.watchers[id], ch)
	if len(w.watchers[id]) == 0 {
		delete(w.watchers, id)
	}
	w.n--
	if w.n == 0 && w.sub != nil {
		_ = w.sub.ps.Close()
		w.sub = nil
	}
}

// run subscribes, then dispatches notifications until the subscription is
// closed. go-redis pings the connection and re-subscribes after a failure;
// each (re-)subscription wakes every watch.
func (w *runWatches) run(sub *subscription) {
	ctx, cancel := context.WithTimeout(context.Background(), subscribeTimeout)
	err := sub.ps.Subscribe(ctx, w.channel)
	if err == nil {
		// The confirmation: only from here on is a publish delivered.
		var msg any
		if msg, err = sub.ps.ReceiveTimeout(ctx, subscribeTimeout); err == nil {
			if _, ok := msg.(*redis.Subscription); !ok {
				err = fmt.Errorf("subscribe to %s: unexpected reply %T", w.channel, msg)
			}
		}
	}
	cancel()
	if err != nil {
		sub.err = err
		close(sub.ready)
		w.mu.Lock()
		if w.sub == sub { // a later watch starts afresh
			w.sub = nil
			_ = sub.ps.Close()
		}
		w.mu.Unlock()
		return
	}
	close(sub.ready)
	for msg := range sub.ps.ChannelWithSubscriptions(redis.WithChannelSize(256)) {
		switch m := msg.(type) {
		case *redis.Message:
			w.signal(m.Payload)
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				w.signal("")
			}
		}
	}
}

// signal wakes the watches of run id ("": every watch).
func (w *runWatches) signal(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	wake := func(set map[chan struct{}]struct{}) {
		for ch := range set {
			select {
			case ch <- struct{}{}:
			default: // one pending signal is enough
			}
		}
	}
	if id != "" {
		wake(w.watchers[id])
		return
	}
	for _, set := range w.watchers {
		wake(set)
	}
}
