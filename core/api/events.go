package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// eventPoll is how long one read of the stream waits before a heartbeat.
const eventPoll = 10 * time.Second

// events streams the change stream as Server-Sent Events, resuming after
// ?after=<id> or the Last-Event-ID header ("$": only new events; default:
// from the oldest retained event).
func (h *handlers) events(c *gin.Context) {
	after := c.Query("after")
	if after == "" {
		after = c.GetHeader("Last-Event-ID")
	}
	ctx := c.Request.Context()
	w := c.Writer
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	w.Flush()
	for ctx.Err() == nil {
		evs, err := h.cat.Events(ctx, after, 500, eventPoll)
		if err != nil {
			if ctx.Err() == nil {
				fmt.Fprintf(w, "event: error\ndata: %q\n\n", "event stream unavailable")
				w.Flush()
			}
			return
		}
		if len(evs) == 0 {
			fmt.Fprint(w, ": keep-alive\n\n")
			w.Flush()
			continue
		}
		for _, ev := range evs {
			data, _ := json.Marshal(ev)
			fmt.Fprintf(w, "id: %s\nevent: %s\ndata: %s\n\n", ev.ID, ev.Type, data)
			after = ev.ID
		}
		w.Flush()
	}
}
