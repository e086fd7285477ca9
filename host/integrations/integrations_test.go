package integrations_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portico-dev/portico/host/goplugin"
	"github.com/portico-dev/portico/host/integrations"
	"github.com/portico-dev/portico/host/internal/plugintest"
	"github.com/portico-dev/portico/host/registry"
	"github.com/portico-dev/portico/internal/redistest"
	"github.com/portico-dev/portico/internal/secretbox"
)

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Details []struct {
			Path    string `json:"path"`
			Message string `json:"message"`
		} `json:"details"`
	} `json:"error"`
}

func errorCode(t testing.TB, r response) string {
	t.Helper()
	var e errorBody
	r.json(t, &e)
	return e.Error.Code
}

func TestPublish(t *testing.T) {
	p := newPortal(t, nil, integrations.Options{})

	r := p.publish(examplePkg)
	if r.status != http.StatusCreated {
		t.Fatalf("publish: status %d: %s", r.status, r.body)
	}
	var got struct {
		registry.Plugin
		Result string `json:"result"`
	}
	r.json(t, &got)
	if got.Name != "example" || got.Version != "0.1.0" || got.Type != "wasm" || len(got.SHA256) != 64 ||
		got.Size == 0 || got.Info == nil || got.Result != "created" {
		t.Fatalf("published %+v", got)
	}

	tests := []struct {
		name   string
		send   func() response
		status int
		code   string
	}{
		{"same bytes again", func() response { return p.publish(examplePkg) }, http.StatusOK, ""},
		{"other bytes, same name@version", func() response { return p.publish(impostorPkg) }, http.StatusConflict, "version_conflict"},
		{"not wasm", func() response {
			return p.do("POST", "/api/v1/plugins", []byte("hello"), "Content-Type", "application/wasm")
		}, http.StatusUnprocessableEntity, "validation_failed"},
		{"wasm that is no plugin", func() response {
			return p.do("POST", "/api/v1/plugins", []byte("\x00asm\x01\x00\x00\x00"), "Content-Type", "application/wasm")
		}, http.StatusUnprocessableEntity, "validation_failed"},
		{"goplugin, bad sha", func() response {
			return p.do("POST", "/api/v1/plugins", map[string]string{"type": "goplugin", "path": "/bin/true", "sha256": strings.Repeat("0", 64)})
		}, http.StatusUnprocessableEntity, "validation_failed"},
		{"json of another type", func() response {
			return p.do("POST", "/api/v1/plugins", map[string]string{"type": "docker"})
		}, http.StatusBadRequest, "malformed_request"},
		{"new version", func() response { return p.publish(upgradedPkg) }, http.StatusCreated, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.send()
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if tt.code != "" && errorCode(t, r) != tt.code {
				t.Fatalf("code %q, want %q: %s", errorCode(t, r), tt.code, r.body)
			}
		})
	}

	var list struct {
		Plugins []registry.Plugin `json:"plugins"`
	}
	p.must(http.StatusOK, "GET", "/api/v1/plugins", nil).json(t, &list)
	if len(list.Plugins) != 2 || list.Plugins[0].Version != "0.2.0" || list.Plugins[1].Version != "0.1.0" {
		t.Fatalf("list = %+v", list.Plugins)
	}
	p.must(http.StatusOK, "GET", "/api/v1/plugins/example/0.1.0", nil)
	if r := p.must(http.StatusNotFound, "GET", "/api/v1/plugins/example/9.9.9", nil); errorCode(t, r) != "not_found" {
		t.Fatalf("missing plugin: %s", r.body)
	}
	p.must(http.StatusUnauthorized, "GET", "/api/v1/plugins", nil, "Authorization", "")
}

func TestResyncAndReconcile(t *testing.T) {
	p := newPortal(t, nil, integrations.Options{})
	api := newStandIn(t, 40)
	p.must(http.StatusCreated, "POST", "/api/v1/plugins", plugintest.Wasm(t, examplePkg), "Content-Type", "application/wasm")
	p.install("items", "example", api, map[string]any{"deletionThreshold": 0.5})
	p.must(http.StatusOK, "GET", "/api/v1/blueprints/exampleItem", nil) // the plugin's default blueprint

	// First resync: everything is created.
	s := p.resync("items")
	if s.Status != integrations.SyncSucceeded || s.Items != 40 || s.Pages != 6 || s.Upserts != 40 || s.Unchanged != 0 ||
		s.Deletes != 0 || s.ErrorCount != 0 || s.DeletionSkipped != "" {
		t.Fatalf("first resync: %+v", s)
	}
	ents := p.search("items")
	if len(ents) != 40 {
		t.Fatalf("%d entities, want 40", len(ents))
	}
	e := ents["item-00003"]
	if e == nil || e.Title != "Item 3" || e.Blueprint != "exampleItem" || e.Datasource != "integration:items" ||
		e.Properties["size"] != 3.0 || e.Properties["status"] != "ok" || e.UpdatedBy != "integration:items" {
		t.Fatalf("item-00003 = %+v", e)
	}

	// Nothing changed: nothing is written, no events.
	events := p.eventCount()
	s = p.resync("items")
	if s.Status != integrations.SyncSucceeded || s.Upserts != 0 || s.Unchanged != 40 || s.Deletes != 0 {
		t.Fatalf("unchanged resync: %+v", s)
	}
	if n := p.eventCount(); n != events {
		t.Fatalf("unchanged resync emitted %d events", n-events)
	}

	// A few items disappear upstream: they are deleted.
	api.keep(35)
	s = p.resync("items")
	if s.Status != integrations.SyncSucceeded || s.Deletes != 5 || s.Unchanged != 35 || s.DeletionSkipped != "" {
		t.Fatalf("resync after removing 5: %+v", s)
	}
	if n := len(p.search("items")); n != 35 {
		t.Fatalf("%d entities after removing 5, want 35", n)
	}

	// Most items disappear: above the threshold, nothing is deleted.
	api.keep(10)
	s = p.resync("items")
	if s.Status != integrations.SyncSucceeded || s.Deletes != 0 || !strings.Contains(s.DeletionSkipped, "25 of 35") {
		t.Fatalf("resync after removing 25 of 35: %+v", s)
	}
	if n := len(p.search("items")); n != 35 {
		t.Fatalf("%d entities after a skipped deletion, want 35", n)
	}

	// A page fails: the sync fails and deletes nothing.
	api.keep(8)
	api.mu.Lock()
	api.failAt = "7"
	api.mu.Unlock()
	s = p.resync("items")
	if s.Status != integrations.SyncFailed || s.Deletes != 0 || s.ErrorCount == 0 || s.DeletionSkipped == "" {
		t.Fatalf("failing resync: %+v", s)
	}
	if !strings.Contains(s.Errors[0].Message, "status 500") {
		t.Fatalf("failing resync errors: %+v", s.Errors)
	}
	if n := len(p.search("items")); n != 35 {
		t.Fatalf("%d entities after a failed resync, want 35", n)
	}
	var st integrations.Status
	p.must(http.StatusOK, "GET", "/api/v1/integrations/items", nil).json(t, &st)
	if st.LastSync == nil || st.LastSync.ID != s.ID || st.LastError == "" || st.Entities != 35 {
		t.Fatalf("status after a failed resync: %+v", st)
	}
}

func TestSyncProgressWhileRunning(t *testing.T) {
	p := newPortal(t, nil, integrations.Options{})
	api := newStandIn(t, 20)
	api.gateAt, api.gate = "14", make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(api.gate) }) }
	t.Cleanup(open) // runs before the stand-in closes
	p.publish(examplePkg)
	p.install("items", "example", api, nil)

	var s integrations.Sync
	p.must(http.StatusAccepted, "POST", "/api/v1/integrations/items/resync", nil).json(t, &s)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var cur integrations.Sync
		p.must(http.StatusOK, "GET", "/api/v1/integrations/items/syncs/"+s.ID, nil).json(t, &cur)
		if cur.Status != integrations.SyncRunning {
			t.Fatalf("sync ended before the gate opened: %+v", cur)
		}
		if cur.Pages == 2 && cur.Upserts == 14 {
			break // two pages in, the third one waiting upstream
		}
		if time.Now().After(deadline) {
			t.Fatalf("no progress: %+v", cur)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A second resync request joins the running one.
	var again integrations.Sync
	p.must(http.StatusAccepted, "POST", "/api/v1/integrations/items/resync", nil).json(t, &again)
	if again.ID != s.ID {
		t.Fatalf("second resync %s, want the running %s", again.ID, s.ID)
	}
	open()
	if s = p.waitSync("items", s.ID); s.Status != integrations.SyncSucceeded || s.Upserts != 20 {
		t.Fatalf("gated resync: %+v", s)
	}
}

func TestWebhook(t *testing.T) {
	p := newPortal(t, nil, integrations.Options{WebhookRate: 1, WebhookBurst: 3})
	api := newStandIn(t, 3)
	p.publish(examplePkg)
	p.install("items", "example", api, nil)
	p.resync("items")

	deliver := func(body []byte, secret string) response {
		return p.do("POST", "/api/v1/integrations/items/webhook", body,
			"Authorization", "", "X-Example-Signature", "sha256="+plugintest.Sign(body, secret))
	}
	events := p.eventCount()
	body := []byte(`{"event": "item.created", "item": {"id": "hooked", "name": "From a webhook", "status": "new", "size": 7}}`)

	// A forged delivery is rejected and writes nothing.
	r := deliver(body, "not-the-secret")
	if r.status != http.StatusUnauthorized || errorCode(t, r) != "webhook_rejected" {
		t.Fatalf("forged delivery: %d %s", r.status, r.body)
	}
	if p.eventCount() != events || p.search("items")["hooked"] != nil {
		t.Fatal("a forged delivery changed the catalog")
	}

	// A signed one is applied before it is answered (the search right
	// after finds it), and answered as the plugin says.
	r = deliver(body, plugintest.WebhookSecret)
	if r.status != http.StatusOK || string(r.body) != `{"ok":true}` {
		t.Fatalf("signed delivery: %d %s", r.status, r.body)
	}
	e := p.search("items")["hooked"]
	if e == nil || e.Title != "From a webhook" || e.Datasource != "integration:items" || e.Properties["size"] != 7.0 {
		t.Fatalf("hooked entity = %+v", e)
	}

	// A deletion event deletes through the mapping (the item is partial).
	r = deliver([]byte(`{"event": "item.deleted", "item": {"id": "item-00001"}}`), plugintest.WebhookSecret)
	if r.status != http.StatusOK || p.search("items")["item-00001"] != nil {
		t.Fatalf("deletion delivery: %d %s", r.status, r.body)
	}

	// The bucket (burst 3, 1/s) is empty now.
	r = deliver(body, plugintest.WebhookSecret)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" || errorCode(t, r) != "rate_limited" {
		t.Fatalf("over the rate limit: %d %v %s", r.status, r.header, r.body)
	}

	// Bodies over 1 MiB are refused; unknown integrations are 404.
	big := make([]byte, 1<<20+1)
	if r := p.do("POST", "/api/v1/integrations/items/webhook", big, "Authorization", ""); r.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("big delivery: %d %s", r.status, r.body)
	}
	if r := p.do("POST", "/api/v1/integrations/nope/webhook", body, "Authorization", ""); r.status != http.StatusNotFound {
		t.Fatalf("unknown integration: %d %s", r.status, r.body)
	}
}

func TestActAndSecrets(t *testing.T) {
	p := newPortal(t, nil, integrations.Options{})
	api := newStandIn(t, 3)
	p.publish(examplePkg)
	put := p.install("items", "example", api, nil)
	p.resync("items")

	var res integrations.ActResult
	p.must(http.StatusOK, "POST", "/api/v1/integrations/items/actions/rename", map[string]any{
		"entity": map[string]string{"blueprint": "exampleItem", "identifier": "item-00002"},
		"inputs": map[string]string{"name": "Shiny"},
	}).json(t, &res)
	if len(res.Upserted) != 1 || res.Upserted[0].Identifier != "item-00002" || !strings.Contains(res.Message, "Shiny") {
		t.Fatalf("rename: %+v", res)
	}
	if e := p.search("items")["item-00002"]; e.Title != "Shiny" || e.Properties["name"] != "Shiny" {
		t.Fatalf("renamed entity = %+v", e)
	}

	tests := []struct {
		name   string
		path   string
		body   any
		status int
		code   string
	}{
		{"unknown action", "/api/v1/integrations/items/actions/explode", map[string]any{}, http.StatusNotFound, "not_found"},
		{"missing entity", "/api/v1/integrations/items/actions/rename",
			map[string]any{"entity": map[string]string{"blueprint": "exampleItem", "identifier": "nope"}, "inputs": map[string]string{"name": "x"}},
			http.StatusNotFound, "not_found"},
		{"plugin refuses", "/api/v1/integrations/items/actions/rename", map[string]any{"entity": nil, "inputs": map[string]string{"name": "x"}},
			http.StatusUnprocessableEntity, "action_failed"},
		{"unknown field", "/api/v1/integrations/items/actions/noop", map[string]any{"bogus": 1}, http.StatusBadRequest, "malformed_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := p.do("POST", tt.path, tt.body)
			if r.status != tt.status || errorCode(t, r) != tt.code {
				t.Fatalf("%d %s, want %d %s", r.status, r.body, tt.status, tt.code)
			}
		})
	}

	// The plugin authenticates upstream without ever seeing the token.
	var check integrations.ActResult
	conn := p.must(http.StatusOK, "POST", "/api/v1/integrations/items/actions/check-connection", map[string]any{"entity": nil})
	conn.json(t, &check)
	if !strings.Contains(string(check.Outputs), `\"authenticated\":true`) {
		t.Fatalf("check-connection: %s", conn.body)
	}

	// Secrets appear in no response and no log line.
	noSecrets(t, "check-connection output", string(conn.body))
	if len(put.SecretsSet) != 2 {
		t.Fatalf("secretsSet = %v", put.SecretsSet)
	}
	one := p.must(http.StatusOK, "GET", "/api/v1/integrations/items", nil)
	all := p.must(http.StatusOK, "GET", "/api/v1/integrations", nil)
	putAgain := p.install("items", "example@0.1.0", api, nil) // secrets omitted: kept
	if len(putAgain.SecretsSet) != 2 {
		t.Fatalf("secrets not kept on update: %v", putAgain.SecretsSet)
	}
	noSecrets(t, "GET integration", string(one.body))
	noSecrets(t, "GET integrations", string(all.body))
	noSecrets(t, "logs", p.logs.String())
	// At rest too: a dump of all of Redis holds no secret value, yet the
	// resync above authenticated with the real token.
	dump := redistest.Dump(t, p.rdb)
	noSecrets(t, "Redis", dump)
	if !strings.Contains(dump, secretbox.Prefix+testKeys.Primary()+":") {
		t.Fatal("no sealed secret in Redis")
	}
	if !strings.Contains(p.logs.String(), "integration installed") {
		t.Fatal("no logs captured")
	}
}

func TestInstallValidation(t *testing.T) {
	p := newPortal(t, nil, integrations.Options{})
	p.publish(examplePkg)
	tests := []struct {
		name string
		spec map[string]any
		path string
	}{
		{"unknown plugin", map[string]any{"plugin": "nope"}, "/plugin"},
		{"unknown version", map[string]any{"plugin": "example@9.0.0"}, "/plugin"},
		{"bad schedule", map[string]any{"plugin": "example", "schedule": "often"}, "/schedule"},
		{"bad threshold", map[string]any{"plugin": "example", "deletionThreshold": 1.5}, "/deletionThreshold"},
		{"undeclared secret", map[string]any{"plugin": "example", "secrets": map[string]string{"password": "x"}}, "/secrets/password"},
		{"bad mapping", map[string]any{"plugin": "example", "mapping": map[string]any{"resources": []map[string]any{
			{"kind": "item", "entity": map[string]any{"identifier": ".id |", "blueprint": `"x"`}}}}}, "/mapping/resources/0/entity/identifier"},
		{"too little memory", map[string]any{"plugin": "example", "limits": map[string]any{"memoryMiB": 2}}, "/limits/memoryMiB"},
		{"protected blueprint", map[string]any{"plugin": "example", "blueprints": []string{"_team"}}, "/blueprints/0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := p.do("PUT", "/api/v1/integrations/x", tt.spec)
			var e errorBody
			r.json(t, &e)
			if r.status != http.StatusUnprocessableEntity || len(e.Error.Details) == 0 || e.Error.Details[0].Path != tt.path {
				t.Fatalf("%d %s, want 422 at %s", r.status, r.body, tt.path)
			}
		})
	}
	p.must(http.StatusNotFound, "GET", "/api/v1/integrations/x", nil)
	p.must(http.StatusBadRequest, "PUT", "/api/v1/integrations/x", map[string]any{"plugin": "example", "secret": 1})
}

func TestConfigSchema(t *testing.T) {
	p := newPortal(t, nil, integrations.Options{})
	p.publish(examplePkg)
	api := newStandIn(t, 3)
	tests := []struct {
		name   string
		config any
		paths  []string
	}{
		{"missing required", map[string]any{"pageSize": 10}, []string{"/config"}},
		{"wrong values", map[string]any{"baseUrl": "not a uri", "pageSize": 0}, []string{"/config/baseUrl", "/config/pageSize"}},
		{"wrong type", map[string]any{"baseUrl": api.URL, "pageSize": "ten"}, []string{"/config/pageSize"}},
		{"not an object", []int{1}, []string{"/config"}},
		{"absent", nil, []string{"/config"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := p.do("PUT", "/api/v1/integrations/x", map[string]any{"plugin": "example", "config": tt.config})
			var e errorBody
			r.json(t, &e)
			var paths []string
			for _, d := range e.Error.Details {
				paths = append(paths, d.Path)
			}
			if r.status != http.StatusUnprocessableEntity || e.Error.Code != "validation_failed" ||
				strings.Join(paths, " ") != strings.Join(tt.paths, " ") {
				t.Fatalf("%d %s, want 422 at %v", r.status, r.body, tt.paths)
			}
		})
	}
	p.must(http.StatusNotFound, "GET", "/api/v1/integrations/x", nil)
	p.install("x", "example", api, map[string]any{"config": map[string]any{"baseUrl": api.URL, "pageSize": 1000}})

	// A plugin whose schemas are not valid JSON Schemas is refused at publish.
	r := p.publish(badSchemaPkg)
	var e errorBody
	r.json(t, &e)
	got := map[string]bool{}
	for _, d := range e.Error.Details {
		got[d.Path] = true
	}
	if r.status != http.StatusUnprocessableEntity || !got["/info/config/type"] || !got["/info/actions/0/inputs/properties/n/minimum"] {
		t.Fatalf("publish with bad schemas: %d %s", r.status, r.body)
	}
}

func TestUpgradeWithoutRestart(t *testing.T) {
	p := newPortal(t, nil, integrations.Options{})
	api := newStandIn(t, 5)
	p.publish(examplePkg)
	p.install("items", "example", api, nil)
	p.resync("items")
	if e := p.search("items")["item-00001"]; e.Title != "Item 1" {
		t.Fatalf("v1 title %q", e.Title)
	}

	p.publish(upgradedPkg)
	st := p.install("items", "example", api, nil) // "example" resolves to the newest
	if st.Plugin != "example@0.2.0" {
		t.Fatalf("upgraded to %s", st.Plugin)
	}
	s := p.resync("items")
	if s.Plugin != "example@0.2.0" || s.Upserts != 5 {
		t.Fatalf("resync after upgrade: %+v", s)
	}
	if e := p.search("items")["item-00001"]; e.Title != "v2 Item 1" {
		t.Fatalf("v2 title %q", e.Title)
	}

	// Pin back down.
	if st = p.install("items", "example@0.1.0", api, nil); st.Plugin != "example@0.1.0" {
		t.Fatalf("downgraded to %s", st.Plugin)
	}
	if s = p.resync("items"); s.Upserts != 5 || p.search("items")["item-00001"].Title != "Item 1" {
		t.Fatalf("resync after downgrade: %+v", s)
	}
}

func TestDeleteAndPurge(t *testing.T) {
	p := newPortal(t, nil, integrations.Options{})
	api := newStandIn(t, 6)
	p.publish(examplePkg)
	// "purge" is installed once "keep" is gone: its first resync (which its
	// install starts) takes over the same items.
	p.install("keep", "example", api, nil)
	p.resync("keep")
	p.must(http.StatusOK, "DELETE", "/api/v1/integrations/keep", nil)
	p.must(http.StatusNotFound, "GET", "/api/v1/integrations/keep", nil)
	if n := len(p.search("keep")); n != 6 {
		t.Fatalf("deleting without purge left %d entities, want 6", n)
	}

	// The "purge" installation writes the same entities: they become its own.
	p.install("purge", "example", api, nil)
	p.resync("purge")
	if n := len(p.search("purge")); n != 6 {
		t.Fatalf("purge owns %d entities, want 6", n)
	}
	var out struct {
		PurgedEntities int `json:"purgedEntities"`
	}
	p.must(http.StatusOK, "DELETE", "/api/v1/integrations/purge?purge=true", nil).json(t, &out)
	if out.PurgedEntities != 6 || len(p.search("purge")) != 0 {
		t.Fatalf("purged %d, left %d", out.PurgedEntities, len(p.search("purge")))
	}
	p.must(http.StatusNotFound, "DELETE", "/api/v1/integrations/purge", nil)
}

func TestScheduledResync(t *testing.T) {
	p := newPortal(t, nil, integrations.Options{ScheduleTick: 20 * time.Millisecond})
	api := newStandIn(t, 4)
	p.publish(examplePkg)
	p.install("items", "example", api, map[string]any{"schedule": "1s"})
	ctx := t.Context()
	go p.mgr.Run(ctx)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		var st integrations.Status
		p.must(http.StatusOK, "GET", "/api/v1/integrations/items", nil).json(t, &st)
		if st.LastSync != nil && st.LastSync.Trigger == integrations.TriggerSchedule && st.LastSync.Status == integrations.SyncSucceeded {
			if st.Entities != 4 {
				t.Fatalf("scheduled resync wrote %d entities", st.Entities)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no scheduled resync ran")
}

// TestPagerDutyIncidents syncs real PagerDuty incident payloads through a
// user mapping override.
func TestPagerDutyIncidents(t *testing.T) {
	raw, err := os.ReadFile("testdata/fixtures/incidents.pypd-sample.json")
	if err != nil {
		t.Fatal(err)
	}
	var incidents []map[string]any
	if err := json.Unmarshal(raw, &incidents); err != nil {
		t.Fatal(err)
	}
	p := newPortal(t, nil, integrations.Options{})
	api := newStandIn(t, 0)
	api.setItems(incidents)
	p.publish(examplePkg)
	p.install("pd", "example", api, map[string]any{"mapping": map[string]any{"resources": []map[string]any{{
		"kind": "item", "selector": `.type == "incident"`,
		"entity": map[string]any{
			"identifier": ".id", "title": ".title", "blueprint": `"exampleItem"`,
			"properties": map[string]string{"status": ".status", "name": ".service.summary", "size": ".incident_number"},
		},
	}}}})
	s := p.resync("pd")
	if s.Status != integrations.SyncSucceeded || s.Upserts != len(incidents) {
		t.Fatalf("resync: %+v", s)
	}
	ents := p.search("pd")
	for _, inc := range incidents {
		e := ents[inc["id"].(string)]
		if e == nil || e.Title != inc["title"] || e.Properties["status"] != inc["status"] || e.Properties["size"] != inc["incident_number"] {
			t.Fatalf("incident %v mapped to %+v", inc["id"], e)
		}
	}
}

func TestGoPlugin(t *testing.T) {
	p := newPortal(t, nil, integrations.Options{})
	api := newStandIn(t, 9)
	path := plugintest.Native(t, examplePkg)
	bin, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := goplugin.Checksum(bin)
	reg := map[string]string{"type": "goplugin", "path": path, "sha256": sum}
	p.must(http.StatusCreated, "POST", "/api/v1/plugins", reg)
	p.must(http.StatusOK, "POST", "/api/v1/plugins", reg)
	p.install("native", "example@0.1.0", api, map[string]any{"limits": map[string]any{}})
	if s := p.resync("native"); s.Status != integrations.SyncSucceeded || s.Upserts != 9 {
		t.Fatalf("go-plugin resync: %+v", s)
	}
	if n := len(p.search("native")); n != 9 {
		t.Fatal(fmt.Sprintf("%d entities, want 9", n))
	}
}

// TestResyncKeepsNewerChanges: a webhook applied while a resync runs is not
// overwritten by the older state the resync listed before or after it.
func TestResyncKeepsNewerChanges(t *testing.T) {
	p := newPortal(t, nil, integrations.Options{})
	api := newStandIn(t, 20)
	api.gateAt, api.gate = "14", make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(api.gate) }) }
	t.Cleanup(open)
	p.publish(examplePkg)
	p.install("items", "example", api, nil)

	var s integrations.Sync
	p.must(http.StatusAccepted, "POST", "/api/v1/integrations/items/resync", nil).json(t, &s)
	waitFor(t, "two pages written, the third one waiting upstream", func() bool {
		var cur integrations.Sync
		p.must(http.StatusOK, "GET", "/api/v1/integrations/items/syncs/"+s.ID, nil).json(t, &cur)
		return cur.Pages == 2 && cur.Upserts == 14
	})
	// item-00003 was listed (and written) before the delivery, item-00016
	// is on the page the stand-in holds back: both must keep the webhook's
	// state.
	for _, id := range []string{"item-00003", "item-00016"} {
		body := []byte(`{"event": "item.updated", "item": {"id": "` + id + `", "name": "Fresh", "status": "ok", "size": 1}}`)
		r := p.do("POST", "/api/v1/integrations/items/webhook", body,
			"Authorization", "", "X-Example-Signature", "sha256="+plugintest.Sign(body, plugintest.WebhookSecret))
		if r.status != http.StatusOK {
			t.Fatalf("delivery for %s: %d %s", id, r.status, r.body)
		}
	}
	open()
	if s = p.waitSync("items", s.ID); s.Status != integrations.SyncSucceeded || s.Kept != 1 || s.Upserts != 19 {
		t.Fatalf("resync: %+v, want 19 upserts and item-00016 kept", s)
	}
	es := p.search("items")
	for _, id := range []string{"item-00003", "item-00016"} {
		if e := es[id]; e == nil || e.Title != "Fresh" {
			t.Errorf("%s after the resync: %+v, want the webhook's title", id, e)
		}
	}
	// The next resync, begun after the delivery, brings the listed state.
	if s := p.resync("items"); s.Kept != 0 || p.search("items")["item-00016"].Title != "Item 16" {
		t.Fatalf("next resync: %+v, title %q", s, p.search("items")["item-00016"].Title)
	}
}
