package standin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// watcher is one open watch stream.
type watcher struct {
	res, namespace string
	ch             chan event
	done           chan struct{}
	once           sync.Once
}

// watchBuffer is how many events a watch may lag behind; a slower one is
// ended (the client re-watches from its last resource version), as the
// API server does with slow watchers.
const watchBuffer = 4096

func (w *watcher) stop() { w.once.Do(func() { close(w.done) }) }

// notify hands ev to the watches of its resource. Called with s.mu held.
func (s *Server) notify(ev event) {
	for w := range s.watchers {
		if w.res != ev.res || (w.namespace != "" && w.namespace != ev.obj.namespace) {
			continue
		}
		select {
		case w.ch <- ev:
		default:
			w.stop()
			delete(s.watchers, w)
		}
	}
}

// watch serves GET …?watch=true: the initial events a watch-list asks for
// (or the history after resourceVersion), then changes as they happen,
// newline-delimited JSON over a chunked response.
func (s *Server) watch(rw http.ResponseWriter, r *http.Request, res resource, namespace string) int {
	q := r.URL.Query()
	initial := q.Get("sendInitialEvents") == "true"
	bookmarks := q.Get("allowWatchBookmarks") == "true"
	timeout := 30 * time.Minute
	if t, err := strconv.Atoi(q.Get("timeoutSeconds")); err == nil && t > 0 {
		timeout = time.Duration(t) * time.Second
	}
	s.mu.Lock()
	if initial && s.refuseWatchList {
		s.mu.Unlock()
		return writeStatus(rw, http.StatusUnprocessableEntity, "Invalid",
			"sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled")
	}
	if initial && q.Get("resourceVersionMatch") != "NotOlderThan" {
		s.mu.Unlock()
		return writeStatus(rw, http.StatusUnprocessableEntity, "Invalid",
			"sendInitialEvents requires resourceVersionMatch=NotOlderThan")
	}
	var backlog [][]byte
	rvParam := q.Get("resourceVersion")
	switch {
	case initial || rvParam == "" || rvParam == "0":
		// The current state as ADDED events (a watch-list, or a watch
		// from "any" version).
		for _, o := range s.st.list(res.name, namespace) {
			line, _ := json.Marshal(struct {
				Type   string          `json:"type"`
				Object json.RawMessage `json:"object"`
			}{"ADDED", o.json})
			backlog = append(backlog, append(line, '\n'))
		}
		if initial {
			backlog = append(backlog, bookmark(res, s.st.rv, true))
		}
	default:
		rv, err := strconv.ParseUint(rvParam, 10, 64)
		if err != nil {
			s.mu.Unlock()
			return writeStatus(rw, http.StatusBadRequest, "BadRequest", "invalid resourceVersion "+strconv.Quote(rvParam))
		}
		evs, ok := s.st.since(res.name, rv)
		if !ok {
			s.mu.Unlock()
			// The API server answers 200 and sends the 410 as an ERROR event.
			rw.Header().Set("Content-Type", "application/json")
			rw.WriteHeader(http.StatusOK)
			_, _ = rw.Write(errorEvent(http.StatusGone, "Expired", fmt.Sprintf("too old resource version: %d (%d)", rv, s.st.events[0].rv)))
			return http.StatusOK
		}
		for _, ev := range evs {
			if namespace == "" || ev.obj.namespace == namespace {
				backlog = append(backlog, ev.line)
			}
		}
	}
	w := &watcher{res: res.name, namespace: namespace, ch: make(chan event, watchBuffer), done: make(chan struct{})}
	s.watchers[w] = struct{}{}
	every := s.bookmarkEvery
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.watchers, w)
		s.mu.Unlock()
	}()

	fl, _ := rw.(http.Flusher)
	rw.Header().Set("Content-Type", "application/json")
	rw.Header().Set("Transfer-Encoding", "chunked")
	rw.WriteHeader(http.StatusOK)
	for _, line := range backlog {
		if _, err := rw.Write(line); err != nil {
			return http.StatusOK
		}
	}
	if fl != nil {
		fl.Flush()
	}
	end := time.NewTimer(timeout)
	defer end.Stop()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		var line []byte
		select {
		case <-r.Context().Done():
			return http.StatusOK
		case <-w.done:
			return http.StatusOK
		case <-end.C:
			return http.StatusOK
		case ev := <-w.ch:
			line = ev.line
		case <-tick.C:
			if !bookmarks {
				continue
			}
			s.mu.Lock()
			line = bookmark(res, s.st.rv, false)
			s.mu.Unlock()
		}
		if _, err := rw.Write(line); err != nil {
			return http.StatusOK
		}
		if fl != nil {
			fl.Flush()
		}
	}
}

// bookmark is a BOOKMARK event at rv; end marks the end of a watch-list's
// initial events.
func bookmark(res resource, rv uint64, end bool) []byte {
	md := map[string]any{"resourceVersion": strconv.FormatUint(rv, 10)}
	if end {
		md["annotations"] = map[string]string{"k8s.io/initial-events-end": "true"}
	}
	line, _ := json.Marshal(map[string]any{
		"type":   "BOOKMARK",
		"object": map[string]any{"kind": res.kind, "apiVersion": res.apiVersion, "metadata": md},
	})
	return append(line, '\n')
}

func errorEvent(code int, reason, msg string) []byte {
	line, _ := json.Marshal(map[string]any{"type": "ERROR", "object": statusBody(code, reason, msg)})
	return append(line, '\n')
}
