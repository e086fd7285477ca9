package integrationtests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/portico-dev/portico/plugins/pagerduty/standin"
)

const pdWebhookSecret = "whsec-integration"

// syncRecord is the part of a sync the tests read.
// installPagerDuty installs the bundled pagerduty plugin as id, pointed at
// the stand-in (config and limits merged over the defaults used here), and
// waits for the first resync the installation starts.
func installPagerDuty(p *proc, id string, pd *standin.Server, config, limits map[string]any) syncRecord {
	p.t.Helper()
	cfg := map[string]any{"baseUrl": pd.URL, "fromEmail": "ops@example.com"}
	maps.Copy(cfg, config)
	lim := map[string]any{"timeoutMs": 60000}
	maps.Copy(lim, limits)
	p.must("PUT", "/api/v1/integrations/"+id, map[string]any{
		"plugin": "pagerduty", "config": cfg,
		"secrets":      map[string]string{"apiToken": standin.DefaultToken, "webhookSecret": pdWebhookSecret},
		"allowedHosts": []string{pd.Host()},
		"auth": []map[string]any{{"hosts": []string{pd.Host()}, "header": "Authorization",
			"template": "Token token={{apiToken}}"}},
		"limits": lim,
	}, http.StatusCreated)
	var st struct{ LastSync *syncRecord }
	if err := json.Unmarshal(p.must("GET", "/api/v1/integrations/"+id, nil, 200), &st); err != nil || st.LastSync == nil {
		p.t.Fatalf("install %s started no resync (%v)", id, err)
	}
	return waitSync(p, id, *st.LastSync)
}

// pdEntity is the part of an entity the tests read.
type pdEntity struct {
	Identifier, Title, Datasource string
	Properties                    map[string]any
	Relations                     map[string]any
}

// pdEntityOf returns an entity, or nil when it does not exist.
func pdEntityOf(p *proc, bp, id string) *pdEntity {
	p.t.Helper()
	code, out := p.call("GET", "/api/v1/blueprints/"+bp+"/entities/"+id, nil)
	if code == http.StatusNotFound {
		return nil
	}
	if code != 200 {
		p.t.Fatalf("get %s/%s: %d %s", bp, id, code, out)
	}
	var e pdEntity
	if err := json.Unmarshal(out, &e); err != nil {
		p.t.Fatal(err)
	}
	return &e
}

// pdDeliver posts a webhook delivery (no signature header when sig is "").
func pdDeliver(t testing.TB, p *proc, id string, body []byte, sig string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", p.base+"/api/v1/integrations/"+id+"/webhook", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if sig != "" {
		req.Header.Set(standin.SignatureHeader, sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// pdStatus returns how many entities installation id holds and its last error.
func pdStatus(p *proc, id string) (entities int, lastError string) {
	p.t.Helper()
	var st struct {
		Entities  int
		LastError string
	}
	if err := json.Unmarshal(p.must("GET", "/api/v1/integrations/"+id, nil, 200), &st); err != nil {
		p.t.Fatal(err)
	}
	return st.Entities, st.LastError
}

// pdCountRequests counts the stand-in's requests to path.
func pdCountRequests(pd *standin.Server, path string) int {
	n := 0
	for _, r := range pd.Requests() {
		if r.Path == path {
			n++
		}
	}
	return n
}

// TestPagerDuty installs the bundled pagerduty plugin into a running portal
// (real Redis) with one PUT, which resyncs it from the stand-in; applies signed
// V3 webhooks (a bad one changes nothing), runs acknowledge and trigger,
// and checks reconciliation: an incident removed upstream is deleted by the
// next resync, a 500 on the resync's last page deletes nothing, and a
// revoked token shows in the installation's status.
func TestPagerDuty(t *testing.T) {
	pd := standin.New()
	defer pd.Close()
	p := startBundled(t)
	s := installPagerDuty(p, "pd", pd, map[string]any{"pageSize": 50}, nil) // its first resync
	incidentCalls := pdCountRequests(pd, "/incidents")                      // in this resync
	// 152 services, 1 schedule, 2 on-calls, 2 open incidents (the 2017
	// sample incidents are resolved and out of the window).
	const synced = 152 + 1 + 2 + 2
	if s.Status != "succeeded" || s.Upserts != synced || len(s.Errors) != 0 {
		t.Fatalf("the installation's first resync: %+v, want %d upserts\n%s", s, synced, p.output())
	}
	if n, _ := pdStatus(p, "pd"); n != synced {
		t.Errorf("installation holds %d entities, want %d", n, synced)
	}
	for _, r := range pd.Requests() {
		if r.Header.Get("Authorization") != "Token token="+standin.DefaultToken {
			t.Fatalf("%s %s sent Authorization %q", r.Method, r.Path, r.Header.Get("Authorization"))
		}
	}

	svc := pdEntityOf(p, "pagerdutyService", "P00BUSE")
	if svc == nil || svc.Title != "API Gateway MTBF Test" || svc.Datasource != "integration:pd" ||
		svc.Properties["openIncidents"] != 1.0 || svc.Properties["status"] != "critical" ||
		fmt.Sprint(svc.Properties["oncallNow"]) != "[John Doe isaac]" {
		t.Errorf("service P00BUSE: %+v", svc)
	}
	inc := pdEntityOf(p, "pagerdutyIncident", "Q1QGYB805SG874")
	if inc == nil || inc.Properties["status"] != "triggered" || inc.Properties["priority"] != "P2" ||
		inc.Relations["service"] != "P00BUSE" {
		t.Errorf("incident Q1QGYB805SG874: %+v", inc)
	}
	if oc := pdEntityOf(p, "pagerdutyOncall", "P7LVMYP-1-PWAXLIH-PJCRRLH"); oc == nil || oc.Relations["schedule"] != "PWAXLIH" {
		t.Errorf("on-call: %+v", oc)
	}

	// A real V3 delivery (PagerDuty's fixture): PFQZPSY is unknown to the
	// REST API, so its event data is applied.
	triggered, err := standin.Fixture("incident.triggered.json")
	if err != nil {
		t.Fatal(err)
	}
	if code, out := pdDeliver(t, p, "pd", triggered, standin.Sign(pdWebhookSecret, triggered)); code != 200 {
		t.Fatalf("webhook: %d %s", code, out)
	}
	if e := pdEntityOf(p, "pagerdutyIncident", "PFQZPSY"); e == nil || e.Properties["status"] != "triggered" || e.Relations["service"] != "PA2P440" {
		t.Errorf("after the triggered delivery: %+v", e)
	}

	// Acknowledged in PagerDuty: the delivery shows it at once.
	const other = "Q3XPBJRWJEU9R9"
	if err := pd.SetIncidentStatus(other, "acknowledged", "responder@example.com"); err != nil {
		t.Fatal(err)
	}
	ack, err := pd.WebhookEvent("incident.acknowledged", other)
	if err != nil {
		t.Fatal(err)
	}
	if code, out := pdDeliver(t, p, "pd", ack, "v1=00ff,"+standin.Sign(pdWebhookSecret, ack)); code != 200 {
		t.Fatalf("webhook: %d %s", code, out)
	}
	if e := pdEntityOf(p, "pagerdutyIncident", other); e == nil || e.Properties["status"] != "acknowledged" || e.Properties["acknowledgedAt"] == nil {
		t.Fatalf("after the acknowledged delivery: %+v", e)
	}

	// Bad or missing signatures: 401 and nothing applied.
	if err := pd.SetIncidentStatus(other, "resolved", "responder@example.com"); err != nil {
		t.Fatal(err)
	}
	resolved, _ := pd.WebhookEvent("incident.resolved", other)
	for _, sig := range []string{standin.Sign("not-the-secret", resolved), ""} {
		if code, out := pdDeliver(t, p, "pd", resolved, sig); code != http.StatusUnauthorized {
			t.Errorf("signature %q: %d %s, want 401", sig, code, out)
		}
	}
	if e := pdEntityOf(p, "pagerdutyIncident", other); e.Properties["status"] != "acknowledged" {
		t.Errorf("a rejected delivery changed the incident: %+v", e)
	}

	// Write-back: the entity shows the new state from the action's result.
	var act struct {
		Message  string
		Upserted []struct{ Blueprint, Identifier string }
		Errors   []any
	}
	out := p.must("POST", "/api/v1/integrations/pd/actions/acknowledge", map[string]any{
		"entity": map[string]string{"blueprint": "pagerdutyIncident", "identifier": "Q1QGYB805SG874"}}, 200)
	if err := json.Unmarshal(out, &act); err != nil || len(act.Upserted) != 1 || len(act.Errors) != 0 {
		t.Fatalf("acknowledge: %s", out)
	}
	if e := pdEntityOf(p, "pagerdutyIncident", "Q1QGYB805SG874"); e.Properties["status"] != "acknowledged" {
		t.Errorf("after acknowledge: %+v", e)
	}
	last := pd.Requests()[len(pd.Requests())-1]
	if last.Method != "PUT" || last.Header.Get("From") != "ops@example.com" {
		t.Errorf("acknowledge sent %s %s From %q", last.Method, last.Path, last.Header.Get("From"))
	}
	out = p.must("POST", "/api/v1/integrations/pd/actions/trigger", map[string]any{
		"entity": map[string]string{"blueprint": "pagerdutyService", "identifier": "P00BUSE"},
		"inputs": map[string]string{"title": "Checkout 5xx", "urgency": "low"}}, 200)
	if err := json.Unmarshal(out, &act); err != nil || len(act.Upserted) != 1 {
		t.Fatalf("trigger: %s", out)
	}
	created := pdEntityOf(p, "pagerdutyIncident", act.Upserted[0].Identifier)
	if created == nil || created.Properties["status"] != "triggered" || created.Properties["urgency"] != "low" || created.Relations["service"] != "P00BUSE" {
		t.Errorf("triggered incident: %+v", created)
	}

	// Removed upstream: the next resync deletes it, and what PagerDuty no
	// longer lists either: PFQZPSY (known only from a webhook) and the
	// 2025 incident now resolved (out of the window, no longer open).
	if !pd.RemoveIncident("Q1QGYB805SG874") {
		t.Fatal("remove incident")
	}
	s = resync(p, "pd")
	if s.Status != "succeeded" || s.Deletes != 3 {
		t.Errorf("resync after the removal: %+v", s)
	}
	for _, id := range []string{"Q1QGYB805SG874", "PFQZPSY", other} {
		if e := pdEntityOf(p, "pagerdutyIncident", id); e != nil {
			t.Errorf("incident %s still in the catalog", id)
		}
	}
	if e := pdEntityOf(p, "pagerdutyIncident", created.Identifier); e == nil {
		t.Errorf("the incident triggered through the action was deleted")
	}
	entities, _ := pdStatus(p, "pd")

	// A 500 on the resync's last page (services, schedules, on-calls and
	// the window done): the resync fails and deletes nothing.
	if !pd.RemoveService("P9GEW6E") {
		t.Fatal("remove service")
	}
	pd.FailAfter("/incidents", incidentCalls-1, 500)
	s = resync(p, "pd")
	if s.Status != "failed" || s.Deletes != 0 || s.DeletionSkipped == "" || len(s.Errors) == 0 ||
		!strings.Contains(s.Errors[len(s.Errors)-1].Message, "list incidents (open) page 1: status 500") {
		t.Errorf("resync with a 500: %+v", s)
	}
	if pdEntityOf(p, "pagerdutyService", "P9GEW6E") == nil {
		t.Error("a failed resync deleted a service")
	}
	if n, _ := pdStatus(p, "pd"); n != entities {
		t.Errorf("entities %d after the failed resync, want %d", n, entities)
	}

	// The token revoked: the status says so, nothing is deleted.
	pd.SetToken("rotated")
	s = resync(p, "pd")
	n, lastError := pdStatus(p, "pd")
	if s.Status != "failed" || s.Deletes != 0 || n != entities ||
		!strings.Contains(lastError, "PagerDuty refused the API token (401)") {
		t.Errorf("with a revoked token: sync %+v, %d entities, lastError %q", s, n, lastError)
	}
}
