package integrationtests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portico-dev/portico/plugins/pagerduty/standin"
)

// BenchmarkPagerDutyResync: the first resync (started by the install) of
// 20,000 PagerDuty objects (5,000 services with on-calls and incident
// numbers, 15,000 incidents, past the 10,000-record pagination cap) from
// the stand-in into a portal on real Redis, then a second one that finds
// everything unchanged; with the plugin sandboxed as any Wasm plugin (loop
// protection on) and installed uninterruptible, as a first-party plugin
// may be. Target: ≥ 5,000
// objects/s. Besides wall-clock rates it reports the CPU time the portico
// process spent (objects per CPU-second), which a loaded machine distorts
// less. Run with -benchtime=1x (each run is a minute of setup).
func BenchmarkPagerDutyResync(b *testing.B) {
	for _, mode := range []struct {
		name            string
		uninterruptible bool
	}{{"sandboxed", false}, {"uninterruptible", true}} {
		b.Run(mode.name, func(b *testing.B) {
			pd := standin.New()
			defer pd.Close()
			if err := pd.AddServices(5000 - len(pd.Services())); err != nil {
				b.Fatal(err)
			}
			if err := pd.AddIncidents(15000); err != nil {
				b.Fatal(err)
			}
			p := startBundled(b)
			b.ResetTimer()
			for _, run := range []string{"cold", "warm"} {
				start, cpu := time.Now(), pdProcessCPU(b, p)
				var s syncRecord
				if run == "cold" { // the resync the installation starts
					s = installPagerDuty(p, "pd", pd, nil, map[string]any{"uninterruptible": mode.uninterruptible})
				} else {
					s = resync(p, "pd")
				}
				took, cpu := time.Since(start), pdProcessCPU(b, p)-cpu
				if s.Status != "succeeded" || len(s.Errors) > 0 {
					b.Fatalf("%s resync: %+v", run, s)
				}
				objects := s.Upserts + s.Unchanged
				if objects < 20000 {
					b.Fatalf("%s resync synced %d objects, want ≥ 20,000", run, objects)
				}
				b.ReportMetric(float64(objects)/took.Seconds(), run+"-objects/s")
				b.ReportMetric(float64(objects)/cpu.Seconds(), run+"-objects/cpu-s")
				b.Logf("%s: %d objects (%d pages) in %s, portico CPU %s", run, objects, s.Pages,
					took.Round(time.Millisecond), cpu.Round(time.Millisecond))
			}
		})
	}
}

// pdProcessCPU returns the CPU time (user + system) the portal's process
// has used so far.
func pdProcessCPU(b *testing.B, p *proc) time.Duration {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name in parentheses: utime and stime are
	// the 12th and 13th, in clock ticks (100 per second on Linux).
	fields := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
	utime, err1 := strconv.Atoi(fields[11])
	stime, err2 := strconv.Atoi(fields[12])
	if err1 != nil || err2 != nil {
		b.Fatalf("parse /proc/%d/stat", p.cmd.Process.Pid)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// BenchmarkPagerDutyWebhook: signed incident.triggered deliveries at 200/s,
// each for an incident new to the catalog (the plugin reads it from the
// stand-in's REST API); latency is from sending the delivery until a
// search finds the entity. Sandboxed and uninterruptible, as the resync
// benchmark. Target: p99 ≤ 100 ms. Run with -benchtime=1x.
func BenchmarkPagerDutyWebhook(b *testing.B) {
	for _, mode := range []struct {
		name            string
		uninterruptible bool
	}{{"sandboxed", false}, {"uninterruptible", true}} {
		b.Run(mode.name, func(b *testing.B) { pdBenchmarkWebhooks(b, mode.uninterruptible) })
	}
}

func pdBenchmarkWebhooks(b *testing.B, uninterruptible bool) {
	const rate, deliveries = 200, 1000
	pd := standin.New()
	defer pd.Close()
	p := startBundled(b)
	if s := installPagerDuty(p, "pd", pd, nil, map[string]any{"uninterruptible": uninterruptible}); s.Status != "succeeded" {
		b.Fatalf("resync: %+v", s)
	}
	known := pd.Incidents()
	if err := pd.AddIncidents(deliveries); err != nil {
		b.Fatal(err)
	}
	var bodies [][]byte
	for _, id := range pd.Incidents() {
		if slices.Contains(known, id) {
			continue
		}
		body, err := pd.WebhookEvent("incident.triggered", id)
		if err != nil {
			b.Fatal(err)
		}
		bodies = append(bodies, body)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 30 * time.Second}
	type result struct {
		latency time.Duration
		status  int
		visible bool
	}
	results := make([]result, len(bodies))
	b.ResetTimer()
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	var wg sync.WaitGroup
	for i, body := range bodies {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ev struct {
				Event struct{ Data struct{ ID string } }
			}
			_ = json.Unmarshal(body, &ev)
			start := time.Now()
			req, _ := http.NewRequest("POST", p.base+"/api/v1/integrations/pd/webhook", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(standin.SignatureHeader, standin.Sign(pdWebhookSecret, body))
			resp, err := client.Do(req)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			results[i].status = resp.StatusCode
			if resp.StatusCode != 200 {
				return
			}
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
				if pdSearchFinds(client, p.base, ev.Event.Data.ID) {
					results[i].latency, results[i].visible = time.Since(start), true
					return
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	var lat []time.Duration
	statuses := map[int]int{}
	for _, r := range results {
		statuses[r.status]++
		if r.visible {
			lat = append(lat, r.latency)
		}
	}
	if len(lat) != len(bodies) {
		b.Errorf("%d of %d deliveries visible in search; statuses %v", len(lat), len(bodies), statuses)
	}
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
	maxMs := float64(lat[len(lat)-1].Microseconds()) / 1000
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(maxMs, "max-ms")
	b.Logf("%d deliveries at %d/s: statuses %v; visible after p50 %.1f ms, p99 %.1f ms, max %.1f ms",
		len(bodies), rate, statuses, pct(0.50), pct(0.99), maxMs)
}

// pdSearchFinds reports whether a search finds pagerdutyIncident id.
func pdSearchFinds(client *http.Client, base, id string) bool {
	q, _ := json.Marshal(map[string]any{"query": map[string]any{"combinator": "and", "rules": []map[string]any{
		{"property": "$blueprint", "operator": "=", "value": "pagerdutyIncident"},
		{"property": "$identifier", "operator": "=", "value": id},
	}}, "limit": 1})
	req, _ := http.NewRequest("POST", base+"/api/v1/entities/search", bytes.NewReader(q))
	req.Header.Set("Authorization", "Bearer T")
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var res struct{ Total int }
	return resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&res) == nil && res.Total == 1
}
