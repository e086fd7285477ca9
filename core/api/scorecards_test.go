package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portico-dev/portico/core/access"
)

var readinessBody = M{"title": "Production readiness",
	"rules": []any{
		M{"identifier": "has-language", "title": "Has a language", "level": "Bronze",
			"query": M{"combinator": "and", "rules": []any{M{"property": "language", "operator": "isNotEmpty"}}}},
		M{"identifier": "low-tier", "level": "Silver",
			"query": M{"combinator": "and", "rules": []any{M{"property": "tier", "operator": "<=", "value": 2}}}},
		M{"identifier": "owned", "level": "Gold",
			"query": M{"combinator": "and", "rules": []any{M{"property": "$team", "operator": "isNotEmpty"}}}},
	}}

// TestScorecardRoutes: define, read back, grade on write, the CI gate, and
// the refusals (bad definitions, writing results, non-admins).
func TestScorecardRoutes(t *testing.T) {
	t.Parallel()
	e := newAccessEnv(t, access.Options{})
	e.must(201, "PUT", "/api/v1/blueprints/svc", M{"schema": M{"properties": M{
		"language": M{"type": "string"}, "tier": M{"type": "integer"}}}})
	r := e.must(201, "PUT", "/api/v1/blueprints/svc/scorecards/readiness", readinessBody)
	if got := r.obj(t); got["identifier"] != "readiness" || got["blueprint"] != "svc" {
		t.Errorf("created: %s", r.Raw)
	}
	got := e.must(200, "GET", "/api/v1/blueprints/svc/scorecards/readiness", nil).obj(t)
	if levels, _ := got["levels"].([]any); len(levels) != 0 {
		t.Errorf("levels stored as given (none): %v", got["levels"])
	}
	if ev, _ := got["evaluation"].(map[string]any); ev["state"] == nil {
		t.Errorf("no evaluation state: %v", got)
	}
	list := e.must(200, "GET", "/api/v1/blueprints/svc/scorecards", nil).obj(t)
	if l, _ := list["scorecards"].([]any); len(l) != 1 {
		t.Errorf("list: %v", list)
	}
	// A blueprint write keeps the scorecards.
	e.must(200, "PUT", "/api/v1/blueprints/svc", M{"title": "Services", "schema": M{"properties": M{
		"language": M{"type": "string"}, "tier": M{"type": "integer"}}}})
	e.must(200, "GET", "/api/v1/blueprints/svc/scorecards/readiness", nil)

	// Graded by the write itself.
	ent := e.must(201, "PUT", "/api/v1/blueprints/svc/entities/a", M{"properties": M{"language": "go", "tier": 3}}).obj(t)
	sc, _ := ent["scorecards"].(map[string]any)
	if res, _ := sc["readiness"].(map[string]any); res["level"] != "Bronze" {
		t.Errorf("entity a graded %v, want Bronze", ent["scorecards"])
	}
	gate := e.must(200, "GET", "/api/v1/blueprints/svc/entities/a/scorecards/readiness", nil).obj(t)
	if gate["level"] != "Bronze" || gate["graded"] != true {
		t.Errorf("gate: %v", gate)
	}
	rules, _ := gate["rules"].([]any)
	if len(rules) != 3 || rules[0].(map[string]any)["title"] != "Has a language" || rules[1].(map[string]any)["passed"] != false {
		t.Errorf("gate rules: %v", rules)
	}
	e.must(200, "PUT", "/api/v1/blueprints/svc/entities/a", M{"team": []string{"pay"}, "properties": M{"language": "go", "tier": 1}})
	if lv := e.must(200, "GET", "/api/v1/blueprints/svc/entities/a/scorecards/readiness", nil).obj(t)["level"]; lv != "Gold" {
		t.Errorf("after the fix: level %v, want Gold", lv)
	}
	// Results are searchable.
	page := e.must(200, "POST", "/api/v1/entities/search", M{"query": M{"combinator": "and", "rules": []any{
		M{"property": "$blueprint", "operator": "=", "value": "svc"},
		M{"property": "scorecards.readiness.level", "operator": "=", "value": "Gold"}}}}).obj(t)
	if page["total"] != 1.0 {
		t.Errorf("search by level: %v", page)
	}

	for _, tc := range []struct {
		name   string
		status int
		code   string
		path   string
		body   any
		paths  []string
	}{
		{"unknown property", 422, "validation_failed", "/api/v1/blueprints/svc/scorecards/x", M{"rules": []any{
			M{"identifier": "r", "level": "Gold", "query": M{"combinator": "and", "rules": []any{M{"property": "nope", "operator": "isNotEmpty"}}}}}},
			[]string{"/rules/0/query"}},
		{"rule at the lowest level", 422, "validation_failed", "/api/v1/blueprints/svc/scorecards/x", M{"rules": []any{
			M{"identifier": "r", "level": "Basic", "query": M{"combinator": "and", "rules": []any{M{"property": "tier", "operator": "isNotEmpty"}}}}}},
			[]string{"/rules/0/level"}},
		{"unknown level", 422, "validation_failed", "/api/v1/blueprints/svc/scorecards/x", M{"rules": []any{
			M{"identifier": "r", "level": "Platinum", "query": M{"combinator": "and", "rules": []any{M{"property": "tier", "operator": "isNotEmpty"}}}}}},
			[]string{"/rules/0/level"}},
		{"relatedTo", 422, "validation_failed", "/api/v1/blueprints/svc/scorecards/x", M{"rules": []any{
			M{"identifier": "r", "level": "Gold", "query": M{"combinator": "and", "rules": []any{M{"operator": "relatedTo", "blueprint": "svc", "identifier": "a"}}}}}},
			nil},
		{"no rules", 422, "validation_failed", "/api/v1/blueprints/svc/scorecards/x", M{"title": "empty"}, []string{"/rules"}},
		{"unknown field", 400, "malformed_request", "/api/v1/blueprints/svc/scorecards/x", M{"rulez": []any{}}, nil},
		{"unknown blueprint", 404, "not_found", "/api/v1/blueprints/nope/scorecards/x", readinessBody, nil},
		{"identifier mismatch", 422, "validation_failed", "/api/v1/blueprints/svc/scorecards/x", M{"identifier": "y", "rules": readinessBody["rules"]}, []string{"/identifier"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("PUT", tc.path, tc.body)
			if r.Status != tc.status {
				t.Fatalf("%d %s, want %d", r.Status, r.Raw, tc.status)
			}
			if tc.paths != nil {
				checkError(t, r, tc.status, tc.code, tc.paths)
			}
		})
	}
	e.must(404, "GET", "/api/v1/blueprints/svc/scorecards/x", nil)

	// Results are the portal's to write.
	r = e.do("PUT", "/api/v1/blueprints/svc/entities/b", M{"scorecards": M{"readiness": M{"level": "Gold"}}})
	if r.Status != 400 {
		t.Errorf("writing scorecards: %d %s, want 400", r.Status, r.Raw)
	}

	// Members read scorecards and the gate; only admins define them.
	e.user("m@example.com", "member")
	_, member := e.mint("m@example.com", "read", "write")
	if r := e.as(member, "GET", "/api/v1/blueprints/svc/entities/a/scorecards/readiness", nil); r.Status != 200 {
		t.Errorf("member reads the gate: %d %s", r.Status, r.Raw)
	}
	if r := e.as(member, "PUT", "/api/v1/blueprints/svc/scorecards/mine", readinessBody); r.Status != 403 {
		t.Errorf("member defines a scorecard: %d %s, want 403", r.Status, r.Raw)
	}
	if r := e.as(member, "DELETE", "/api/v1/blueprints/svc/scorecards/readiness", nil); r.Status != 403 {
		t.Errorf("member deletes a scorecard: %d %s, want 403", r.Status, r.Raw)
	}
	e.must(204, "DELETE", "/api/v1/blueprints/svc/scorecards/readiness", nil)
	e.must(404, "GET", "/api/v1/blueprints/svc/scorecards/readiness", nil)
}

// TestLevelEventsAreFiltered: a member's event stream carries the level
// changes of entities they may read and none of another team's (whose
// before and after would show the entity).
func TestLevelEventsAreFiltered(t *testing.T) {
	t.Parallel()
	e := newAccessEnv(t, access.Options{})
	e.must(201, "PUT", "/api/v1/blueprints/_team/entities/payments", M{})
	e.must(201, "PUT", "/api/v1/blueprints/guarded", guardedBlueprint)
	e.must(201, "PUT", "/api/v1/blueprints/guarded/scorecards/ready", M{"rules": []any{
		M{"identifier": "low", "level": "Gold", "query": M{"combinator": "and", "rules": []any{M{"property": "tier", "operator": "<=", "value": 1}}}}}})
	for _, id := range []string{"theirs", "mine"} {
		team := "other"
		if id == "mine" {
			team = "payments"
		}
		e.must(201, "PUT", "/api/v1/blueprints/guarded/entities/"+id, M{"team": []string{team}, "properties": M{"tier": 1}})
		e.must(200, "PUT", "/api/v1/blueprints/guarded/entities/"+id, M{"team": []string{team}, "properties": M{"tier": 3}})
	}
	e.user("m@example.com", "member", "payments")
	_, member := e.mint("m@example.com", "read")
	req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/events?after=0", nil)
	req.Header.Set("Authorization", "Bearer "+member)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := e.srv.Client().Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	buf := make([]byte, 1<<16)
	var got strings.Builder
	mine := `"type":"scorecard.level_changed","blueprint":"guarded","identifier":"mine"`
	for !strings.Contains(got.String(), mine) {
		n, err := res.Body.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if !strings.Contains(got.String(), mine) || strings.Contains(got.String(), "theirs") {
		t.Fatalf("stream: %s", got.String())
	}
}
