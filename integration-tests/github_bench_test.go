package integrationtests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portico-dev/portico/plugins/github/standin"
)

// installGitHub installs the github plugin as id on p, against api, for
// repos, and waits for the first resync the install starts.
func installGitHub(tb testing.TB, p *proc, api *standin.Server, id string, repos []string, limits map[string]any) syncRecord {
	tb.Helper()
	return ghInstall(p, id, map[string]any{
		"plugin": "github",
		"config": map[string]any{"baseUrl": api.URL, "repositories": repos, "runsSinceDays": 0,
			"maxRunsPerRepository": 100_000},
		"secrets":      map[string]any{"token": standin.Token, "webhookSecret": githubWebhookSecret},
		"allowedHosts": []string{strings.TrimPrefix(api.URL, "http://")},
		"auth":         []map[string]any{{"hosts": []string{"127.0.0.1"}, "header": "Authorization", "template": "Bearer {{token}}"}},
		"limits":       limits,
	})
}

// BenchmarkGitHubResync20k: a full resync of 20,000 workflow runs (cloned
// from the fixtures) of one repository, 100 per GitHub page, from the
// stand-in through the bundled Wasm plugin into a real redis-server behind
// `portico serve`; then a second resync with nothing changed. Target:
// ≥ 5,000 objects/s. Run with -benchtime 1x.
//
//	go test ./integration-tests -run '^$' -bench BenchmarkGitHubResync20k -benchtime 1x
func BenchmarkGitHubResync20k(b *testing.B) {
	const n = 20_000
	const repo = "hub4j-test-org/GHWorkflowRunTest"
	for _, mode := range []struct {
		name            string
		uninterruptible bool
	}{{"checked", false}, {"uninterruptible", true}} {
		b.Run(mode.name, func(b *testing.B) {
			api := standin.New()
			defer api.Close()
			if _, err := api.AddRuns(repo, n); err != nil {
				b.Fatal(err)
			}
			var first, second time.Duration
			var objects int
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				p := startBundled(b)
				b.StartTimer()
				// The install's own first resync, timed by its record.
				s := installGitHub(b, p, api, fmt.Sprintf("bench%d", i), []string{repo},
					map[string]any{"memoryMiB": 256, "timeoutMs": 60000, "uninterruptible": mode.uninterruptible})
				first += s.took()
				if s.Status != "succeeded" || s.Upserts < n {
					b.Fatalf("first resync: %+v", s)
				}
				objects += s.Upserts

				s = resync(p, fmt.Sprintf("bench%d", i))
				second += s.took()
				if s.Status != "succeeded" || s.Upserts != 0 || s.Deletes != 0 {
					b.Fatalf("unchanged resync: %+v", s)
				}
				b.StopTimer()
				p.stop(syscall.SIGTERM)
			}
			b.ReportMetric(float64(objects)/first.Seconds(), "objects/s")
			b.ReportMetric(float64(objects)/second.Seconds(), "unchanged-objects/s")
		})
	}
}

// BenchmarkGitHubWebhookToSearch: signed workflow_run deliveries (the
// completed fixture, 22 KB, each a new run) at a fixed rate for 10 s;
// latency is from sending a delivery until a search finds its run. Target:
// p99 ≤ 100 ms at 200 webhooks/s. Run with -benchtime 1x.
//
//	go test ./integration-tests -run '^$' -bench BenchmarkGitHubWebhookToSearch -benchtime 1x
func BenchmarkGitHubWebhookToSearch(b *testing.B) {
	for _, uninterruptible := range []bool{false, true} {
		for _, rate := range []int{50, 200} {
			name := fmt.Sprintf("checked/%d/s", rate)
			if uninterruptible {
				name = fmt.Sprintf("uninterruptible/%d/s", rate)
			}
			b.Run(name, func(b *testing.B) { benchmarkWebhooks(b, rate, uninterruptible) })
		}
	}
}

func benchmarkWebhooks(b *testing.B, rate int, uninterruptible bool) {
	total := rate * 10
	api := standin.New()
	defer api.Close()
	p := startBundled(b)
	installGitHub(b, p, api, "hooks", []string{"octo-org/octo-repo"}, map[string]any{"uninterruptible": uninterruptible})
	var payload map[string]any
	if err := json.Unmarshal(standin.Payload("workflow_run.completed"), &payload); err != nil {
		b.Fatal(err)
	}
	run := payload["workflow_run"].(map[string]any)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024}}
	search := func(id string) (bool, error) {
		q, _ := json.Marshal(map[string]any{"limit": 1, "query": map[string]any{"combinator": "and", "rules": []any{
			map[string]any{"property": "$blueprint", "operator": "=", "value": "githubWorkflowRun"},
			map[string]any{"property": "$identifier", "operator": "=", "value": id}}}})
		req, _ := http.NewRequest("POST", p.base+"/api/v1/entities/search", bytes.NewReader(q))
		req.Header.Set("Authorization", "Bearer T")
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return false, fmt.Errorf("search: status %d", resp.StatusCode)
		}
		var res struct{ Total int }
		err = json.NewDecoder(resp.Body).Decode(&res)
		return res.Total == 1, err
	}
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		base := 5_000_000_000 + i*total // new runs every round
		bodies := make([][]byte, total)
		for j := range bodies {
			run["id"] = base + j
			bodies[j], _ = json.Marshal(payload)
		}
		b.StartTimer()
		var mu sync.Mutex
		var lat []time.Duration
		var failures []string
		var wg sync.WaitGroup
		tick := time.NewTicker(time.Second / time.Duration(rate))
		began := time.Now()
		for j, body := range bodies {
			<-tick.C
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprint(base + j)
				start := time.Now()
				req, _ := standin.WebhookRequest(p.base+"/api/v1/integrations/hooks/webhook", "workflow_run", githubWebhookSecret, body)
				resp, err := client.Do(req)
				if err == nil {
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != 200 {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s: %v %v", id, err, resp))
					mu.Unlock()
					return
				}
				var last error
				for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
					ok, err := search(id)
					if err == nil && ok {
						mu.Lock()
						lat = append(lat, time.Since(start))
						mu.Unlock()
						return
					}
					last = err
				}
				mu.Lock()
				failures = append(failures, fmt.Sprintf("%s: applied (200) but not found by search for 30 s (%v)", id, last))
				mu.Unlock()
			}()
		}
		tick.Stop()
		wg.Wait()
		elapsed := time.Since(began)
		if len(failures) > 0 {
			b.Fatalf("%d failures, first %s", len(failures), failures[0])
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(total)/elapsed.Seconds(), "webhooks/s")
	}
}
