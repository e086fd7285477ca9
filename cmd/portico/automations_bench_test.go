package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/core/catalog"
)

// BenchmarkAutomationLatency writes entities at 500/s for 20 s with an
// automation starting an action run on entity.created, against real
// redis-server and the embedded Temporal server, and reports the
// latency from each entity.created event to its run.created event (the
// catalog appends it once the run's workflow was started): p50, p99 and
// max in ms. Run it with -benchtime 1x (make bench-automations).
// PORTICO_BENCH_RATE sets another rate. When runs lag so far behind
// that not all of them started within 5 minutes, the figures are over the
// runs that did, and "started" says how many.
func BenchmarkAutomationLatency(b *testing.B) {
	const seconds = 20
	rate := 500
	if r, err := strconv.Atoi(os.Getenv("PORTICO_BENCH_RATE")); err == nil && r > 0 {
		rate = r
	}
	e := newAutoEnv(b)
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ok.Close()
	e.admin(201, "PUT", "/api/v1/blueprints/bench", map[string]any{"schema": map[string]any{"properties": map[string]any{}}})
	e.admin(201, "PUT", "/api/v1/actions/ack", map[string]any{"blueprint": "bench", "operation": "DAY-2", "invocation": webhook(ok.URL)})
	e.admin(201, "PUT", "/api/v1/automations/ack-new", map[string]any{
		"trigger": map[string]any{"event": "entity.created", "blueprint": "bench"},
		"invoke":  map[string]any{"type": "action", "action": "ack"}})
	ctx := catalog.WithActor(e.ctx, catalog.SystemActor("bench"))
	_, start, err := e.p.catalog.EventBounds(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	total := rate * seconds
	tick := time.NewTicker(time.Second / time.Duration(rate))
	errs := make(chan error, total)
	for i := range total {
		<-tick.C
		go func() {
			_, _, err := e.p.catalog.PutEntity(ctx, &catalog.Entity{Blueprint: "bench", Identifier: fmt.Sprintf("e%d", i)}, true)
			errs <- err
		}()
	}
	tick.Stop()
	for range total {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	created, started := map[string]time.Time{}, map[string]time.Time{}
	deadline := time.Now().Add(5 * time.Minute)
	for after := start; len(started) < total && time.Now().Before(deadline); {
		evs, err := e.p.catalog.Events(ctx, after, 1000, time.Second)
		if err != nil {
			b.Fatal(err)
		}
		for _, ev := range evs {
			after = ev.ID
			switch ev.Type {
			case catalog.EventEntityCreated:
				if ev.Blueprint == "bench" {
					created[ev.Identifier] = ev.At
				}
			case catalog.EventRunCreated:
				var r actions.RunEvent
				if json.Unmarshal(ev.Detail, &r) == nil && r.Action == "ack" {
					started[r.Entity] = ev.At
				}
			}
		}
	}
	b.StopTimer()
	if len(started) == 0 {
		b.Fatal("no run started")
	}
	lat := make([]float64, 0, total)
	for id, at := range started {
		lat = append(lat, float64(at.Sub(created[id]).Microseconds())/1000)
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(lat[len(lat)-1], "max-ms")
	b.ReportMetric(float64(total), "events")
	b.ReportMetric(float64(len(started)), "started")
}
