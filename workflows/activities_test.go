package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/core/catalog/rediscatalog"
)

func TestWebhookSignsAndKeys(t *testing.T) {
	type delivery struct {
		header http.Header
		body   []byte
	}
	got := make(chan delivery, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- delivery{r.Header.Clone(), b}
		_, _ = w.Write([]byte(`{"deployed":true}`))
	}))
	defer srv.Close()

	tests := []struct {
		name string
		body string
		want string
	}{
		{"default body", "", `{"run":{"action":"deploy","id":"run_1","inputs":{"version":"1.2"}},"step":"ship"}`},
		{"jq body", `{version: .inputs.version, tier: .entity.properties.tier}`, `{"tier":1,"version":"1.2"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ts testsuite.WorkflowTestSuite
			ts.SetLogger(quietLogger)
			env := ts.NewTestActivityEnvironment()
			env.RegisterActivity(&Activities{Store: &memStore{}})
			req := WebhookRequest{RunID: "run_1", Step: "ship", Action: "deploy", URL: srv.URL, Body: tt.body,
				Headers: map[string]string{"X-Team": "payments"},
				Context: json.RawMessage(`{"inputs":{"version":"1.2"},"entity":{"properties":{"tier":1}}}`),
				Run:     map[string]any{"id": "run_1", "action": "deploy", "inputs": map[string]any{"version": "1.2"}}}
			v, err := env.ExecuteActivity(activityWebhook, req)
			if err != nil {
				t.Fatal(err)
			}
			var res WebhookResult
			if err := v.Get(&res); err != nil || res.Status != 200 || string(res.Body) != `{"deployed":true}` {
				t.Fatalf("result %+v %v", res, err)
			}
			d := <-got
			if string(d.body) != tt.want {
				t.Fatalf("body %s, want %s", d.body, tt.want)
			}
			if k := d.header.Get("Idempotency-Key"); k != "run_1:ship" {
				t.Fatalf("Idempotency-Key %q", k)
			}
			stamp := d.header.Get("X-Portico-Timestamp")
			sec, err := strconv.ParseInt(stamp, 10, 64)
			if err != nil || time.Since(time.Unix(sec, 0)) > time.Minute {
				t.Fatalf("timestamp %q", stamp)
			}
			if sig := d.header.Get("X-Portico-Signature"); sig != Signature("s3cret", stamp, d.body) {
				t.Fatalf("signature %s does not verify", sig)
			}
			if d.header.Get("X-Team") != "payments" {
				t.Fatal("custom header lost")
			}
		})
	}
}

func TestSignatureVector(t *testing.T) {
	// echo -n '1700000000.{}' | openssl dgst -sha256 -hmac secret
	const want = "b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
	if got := Signature("secret", "1700000000", []byte("{}")); got != want {
		t.Fatalf("signature %s, want %s", got, want)
	}
}

func TestUpdateEntity(t *testing.T) {
	ctx := context.Background()
	cat := envCatalog(t, `{"expiresAt":{"type":"string","format":"timer"},"owner":{"type":"string"}}`,
		map[string]string{"pr-1": `{"expiresAt":"2026-11-27T10:00:00Z","owner":"bob"}`})
	extend := `{properties: {expiresAt: ((.entity.properties.expiresAt | fromdate) + .inputs.days * 86400 | todate)}}`
	runCtx := json.RawMessage(`{"inputs":{"days":3},"entity":{"properties":{"expiresAt":"2026-11-27T10:00:00Z"}}}`)

	tests := []struct {
		name      string
		req       UpdateRequest
		wantErr   string // "" means success
		wantValue string // expiresAt afterwards
	}{
		{"extend by 3 days", UpdateRequest{Blueprint: `"env"`, Identifier: `"pr-1"`, Patch: extend, Context: runCtx}, "", "2026-11-30T10:00:00Z"},
		{"same patch again changes nothing", UpdateRequest{Blueprint: `"env"`, Identifier: `"pr-1"`, Patch: extend, Context: runCtx}, "", "2026-11-30T10:00:00Z"},
		{"not an object", UpdateRequest{Blueprint: `"env"`, Identifier: `"pr-1"`, Patch: `.inputs.days`, Context: runCtx}, "not an object", "2026-11-30T10:00:00Z"},
		{"invalid value", UpdateRequest{Blueprint: `"env"`, Identifier: `"pr-1"`, Patch: `{properties: {expiresAt: "soon"}}`, Context: runCtx}, "UpdateRejected", "2026-11-30T10:00:00Z"},
		{"unknown entity", UpdateRequest{Blueprint: `"env"`, Identifier: `"pr-9"`, Patch: `{}`, Context: runCtx}, "not found", "2026-11-30T10:00:00Z"},
		{"built-in blueprint", UpdateRequest{Blueprint: `"_user"`, Identifier: `"bob@example.com"`, Patch: `{properties: {role: "admin"}}`, Context: runCtx}, "built-in blueprints", "2026-11-30T10:00:00Z"},
		{"patch never ends", UpdateRequest{Blueprint: `"env"`, Identifier: `"pr-1"`, Patch: `def f: f; f`, Context: runCtx}, `jq "def f: f; f": `, "2026-11-30T10:00:00Z"},
		{"patch builds a huge string", UpdateRequest{Blueprint: `"env"`, Identifier: `"pr-1"`, Patch: `{properties: {owner: ("x" * 1e9)}}`, Context: runCtx}, "value size limit exceeded", "2026-11-30T10:00:00Z"},
		{"identifier collects for ever", UpdateRequest{Blueprint: `"env"`, Identifier: `[repeat("pr-1")] | .[0]`, Patch: `{}`, Context: runCtx}, "limit exceeded", "2026-11-30T10:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := activityEnv(cat)
			tt.req.Action, tt.req.By = "extend-ttl", "bob@example.com"
			_, err := env.ExecuteActivity(activityUpdate, tt.req)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("update: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("update: %v, want an error with %q", err, tt.wantErr)
			}
			got, err := cat.GetEntity(ctx, catalog.Ref{Blueprint: "env", Identifier: "pr-1"})
			if err != nil {
				t.Fatal(err)
			}
			if got.Properties["expiresAt"] != tt.wantValue || got.Properties["owner"] != "bob" {
				t.Fatalf("entity after update: %v", got.Properties)
			}
			if got.UpdatedBy != "bob@example.com" && tt.wantErr == "" {
				t.Fatalf("updatedBy %q", got.UpdatedBy)
			}
		})
	}
}

func TestCheckEntity(t *testing.T) {
	cat := envCatalog(t, `{"status":{"type":"string"}}`,
		map[string]string{"pr-1": `{"status":"ready"}`, "pr-2": `{"status":"provisioning"}`})
	ready := &catalog.Rule{Combinator: "and", Rules: []catalog.Rule{{Property: "status", Operator: "=", Value: "ready"}}}
	runCtx := json.RawMessage(`{"inputs":{"kind":"env","env":"pr-1","count":3},"steps":{"create":{"output":{"id":"pr-2"}}}}`)

	// Selector fields as a wait step passes them: literals quoted, jq as is.
	sel := actions.LiteralOrJQ
	if got := sel("pr-1"); got != `"pr-1"` {
		t.Fatalf("LiteralOrJQ(pr-1) = %s", got)
	}
	tests := []struct {
		name        string
		blueprint   string
		identifier  string
		until       *catalog.Rule
		want        CheckResult
		wantErrType string // "" means success
	}{
		{"jq identifier, rule holds", "env", ".inputs.env", ready, CheckResult{"env", "pr-1", true, true}, ""},
		{"jq blueprint, step output identifier, rule does not hold", ".inputs.kind", ".steps.create.output.id", ready, CheckResult{"env", "pr-2", true, false}, ""},
		{"literal identifier, rule does not hold", "env", "pr-2", ready, CheckResult{"env", "pr-2", true, false}, ""},
		{"missing entity", "env", "pr-9", ready, CheckResult{"env", "pr-9", false, false}, ""},
		{"missing entity without a rule", "env", "pr-9", nil, CheckResult{"env", "pr-9", false, false}, ""},
		{"no rule holds once the entity exists", "env", "pr-2", nil, CheckResult{"env", "pr-2", true, true}, ""},
		{"non-string identifier", "env", ".inputs.count", ready, CheckResult{}, "TemplateError"},
		{"non-string blueprint", ".inputs", "pr-1", ready, CheckResult{}, "TemplateError"},
		{"identifier yields nothing", "env", ".inputs.nope // empty", ready, CheckResult{}, "TemplateError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := activityEnv(cat)
			req := CheckRequest{Blueprint: sel(tt.blueprint), Identifier: sel(tt.identifier), Until: tt.until, Context: runCtx}
			v, err := env.ExecuteActivity(activityCheckEntity, req)
			if tt.wantErrType != "" {
				var appErr *temporal.ApplicationError
				if !errors.As(err, &appErr) || appErr.Type() != tt.wantErrType || !appErr.NonRetryable() {
					t.Fatalf("error %v, want a non-retryable %s", err, tt.wantErrType)
				}
				return
			}
			if err != nil {
				t.Fatalf("check: %v", err)
			}
			var got CheckResult
			if err := v.Get(&got); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("result %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestExpire(t *testing.T) {
	ctx := context.Background()
	due := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	later := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	cat := envCatalog(t, `{"expiresAt":{"type":"string","format":"timer"}}`, map[string]string{
		"due":     `{"expiresAt":"` + due.Format(time.RFC3339) + `"}`,
		"moved":   `{"expiresAt":"` + later.Format(time.RFC3339) + `"}`,
		"cleared": `{}`,
	})
	expiredEvents := func(id string) int {
		evs, err := cat.History(ctx, catalog.Ref{Blueprint: "env", Identifier: id})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, ev := range evs {
			if ev.Type == catalog.EventTimerExpired {
				n++
			}
		}
		return n
	}

	tests := []struct {
		name        string
		id          string
		retry       bool // a retry of an attempt that recorded the event
		rescheduled *time.Time
		events      int
	}{
		{"due", "due", false, nil, 1},
		{"retried after recording", "due", true, nil, 1},
		{"moved later", "moved", false, &later, 0},
		{"cleared", "cleared", false, nil, 0},
		{"deleted", "gone", false, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := activityEnv(cat)
			if tt.retry {
				env.SetHeartbeatDetails("event recorded")
			}
			v, err := env.ExecuteActivity(activityExpire, TimerInput{Blueprint: "env", Identifier: tt.id, Property: "expiresAt", ExpiresAt: due})
			if err != nil {
				t.Fatal(err)
			}
			var res ExpireResult
			if err := v.Get(&res); err != nil {
				t.Fatal(err)
			}
			if (res.Rescheduled == nil) != (tt.rescheduled == nil) || (res.Rescheduled != nil && !res.Rescheduled.Equal(*tt.rescheduled)) {
				t.Fatalf("rescheduled %v, want %v", res.Rescheduled, tt.rescheduled)
			}
			if tt.id != "gone" {
				if n := expiredEvents(tt.id); n != tt.events {
					t.Fatalf("%d timer.expired events, want %d", n, tt.events)
				}
			}
		})
	}
}

// envCatalog returns a catalog on miniredis with blueprint "env" of the
// given schema properties and entities (identifier → properties JSON).
func envCatalog(t *testing.T, properties string, entities map[string]string) *catalog.Service {
	t.Helper()
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	cat := catalog.NewService(rediscatalog.New(rdb, rediscatalog.Options{}), catalog.Options{})
	ctx := context.Background()
	bp, err := catalog.DecodeBlueprint([]byte(`{"identifier":"env","schema":{"properties":` + properties + `}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := cat.PutBlueprint(ctx, bp, true); err != nil {
		t.Fatal(err)
	}
	for id, props := range entities {
		e, err := catalog.DecodeEntity([]byte(`{"identifier":"` + id + `","properties":` + props + `}`))
		if err != nil {
			t.Fatal(err)
		}
		e.Blueprint = "env"
		if _, _, err := cat.PutEntity(ctx, e, true); err != nil {
			t.Fatal(err)
		}
	}
	return cat
}

// activityEnv is an activity test environment over cat.
func activityEnv(cat *catalog.Service) *testsuite.TestActivityEnvironment {
	var ts testsuite.WorkflowTestSuite
	ts.SetLogger(quietLogger)
	env := ts.NewTestActivityEnvironment()
	env.RegisterActivity(&Activities{Store: &memStore{}, Catalog: cat})
	return env
}
