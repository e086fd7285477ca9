package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/portico-dev/portico/core/catalog"
)

const (
	// eventPoll is how long one blocking read of the stream waits, and how
	// often an idle SSE stream gets a keep-alive comment.
	eventPoll = 10 * time.Second
	// eventRecheck is how often an idle SSE stream re-reads the change
	// stream without being woken: a backstop for the watcher's start-up.
	eventRecheck = time.Second
	// eventBatch is how many events one read returns at most.
	eventBatch = 500
)

// events streams the change stream as Server-Sent Events, resuming after
// ?after=<id> or the Last-Event-ID header ("$": only new events; default:
// from the oldest retained event).
//
// Streams read with short non-blocking reads and wait on the shared
// eventHub between them, so an open stream holds no Redis connection (one
// blocking XREAD per stream would drain the pool and stall every other
// request) and a client that goes away is released at once.
func (h *handlers) events(c *gin.Context) {
	after := c.Query("after")
	if after == "" {
		after = c.GetHeader("Last-Event-ID")
	}
	ctx := c.Request.Context()
	w := c.Writer
	startSSE(w)

	unsubscribe := h.hub.subscribe()
	defer unsubscribe()
	recheck := time.NewTicker(eventRecheck)
	defer recheck.Stop()
	lastWrite := time.Now()
	for ctx.Err() == nil {
		wake := h.hub.changed()
		// "$" has no position yet: it needs a blocking read (the store
		// resolves "$" inside it) until the first new event names one.
		var block time.Duration
		if after == "$" {
			block = eventRecheck
		}
		evs, err := h.cat.Events(ctx, after, eventBatch, block)
		if err != nil {
			if ctx.Err() == nil {
				fmt.Fprintf(w, "event: error\ndata: %q\n\n", "event stream unavailable")
				w.Flush()
			}
			return
		}
		for _, ev := range evs {
			after = ev.ID
			if ev.Type == "" {
				continue // redacted: this actor may not read it
			}
			data, _ := json.Marshal(ev)
			fmt.Fprintf(w, "id: %s\nevent: %s\ndata: %s\n\n", ev.ID, ev.Type, data)
		}
		if len(evs) > 0 {
			w.Flush()
			lastWrite = time.Now()
			if len(evs) == eventBatch {
				continue
			}
		}
		if after == "$" {
			if time.Since(lastWrite) >= eventPoll {
				fmt.Fprint(w, ": keep-alive\n\n")
				w.Flush()
				lastWrite = time.Now()
			}
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-recheck.C:
			if time.Since(lastWrite) >= eventPoll {
				fmt.Fprint(w, ": keep-alive\n\n")
				w.Flush()
				lastWrite = time.Now()
			}
		}
	}
}

// startSSE answers 200 with the headers of an event stream (no caching,
// no proxy buffering) and flushes them.
func startSSE(w gin.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	w.Flush()
}

// eventHub wakes SSE streams when the change stream grows: while any stream
// is open, one goroutine blocks on the stream for all of them.
type eventHub struct {
	cat *catalog.Service

	mu   sync.Mutex
	subs int
	wake chan struct{}      // closed and replaced when new events arrive
	stop context.CancelFunc // stops the running watcher; nil when none runs
}

func newEventHub(cat *catalog.Service) *eventHub {
	return &eventHub{cat: cat, wake: make(chan struct{})}
}

// subscribe registers an open stream, starting the watcher for the first.
func (h *eventHub) subscribe() (unsubscribe func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.subs++
	if h.stop == nil {
		// It only learns that something was appended: as the system, the
		// catalog need not decide what it may see.
		ctx, cancel := context.WithCancel(catalog.WithActor(context.Background(), catalog.SystemActor("events")))
		h.stop = cancel
		go h.watch(ctx)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.subs--
			if h.subs == 0 && h.stop != nil {
				h.stop()
				h.stop = nil
			}
		})
	}
}

// changed returns a channel that is closed when new events arrive.
func (h *eventHub) changed() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.wake
}

func (h *eventHub) broadcast() {
	h.mu.Lock()
	defer h.mu.Unlock()
	close(h.wake)
	h.wake = make(chan struct{})
}

// watch blocks on the stream from its tip and wakes every stream whenever
// something was appended, until ctx is cancelled.
func (h *eventHub) watch(ctx context.Context) {
	after := "$"
	for ctx.Err() == nil {
		evs, err := h.cat.Events(ctx, after, eventBatch, eventPoll)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			// The streams' own reads report the failure; back off.
			h.broadcast()
			select {
			case <-ctx.Done():
			case <-time.After(eventRecheck):
			}
			continue
		}
		if len(evs) > 0 {
			after = evs[len(evs)-1].ID
			h.broadcast()
		}
	}
}
