package api_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/portico-dev/portico/core/access"
)

// thingBlueprint has a relation to itself, for /related.
var thingBlueprint = M{
	"identifier": "thing",
	"schema":     M{"properties": M{"n": M{"type": "integer"}}},
	"relations":  M{"parent": M{"target": "thing"}},
}

// TestIdentifiersWithSlash drives every entity route with identifiers
// that contain "/" (issue 12), sent URL-encoded as %2F: the handlers,
// responses, history and relations see the decoded identifier.
func TestIdentifiersWithSlash(t *testing.T) {
	t.Parallel()
	const things = "/api/v1/blueprints/thing/entities/"
	const parent = "up/stream"
	for _, id := range []string{"octo/repo", "prod/default/Deployment/web", "a+b@c:d=e/f", "trailing/"} {
		t.Run(id, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.must(201, "PUT", "/api/v1/blueprints/thing", thingBlueprint)
			e.must(201, "PUT", things+url.PathEscape(parent), M{})
			path := things + url.PathEscape(id)
			if !strings.Contains(path, "%2F") {
				t.Fatalf("%s is not escaped", path)
			}
			steps := []struct {
				name, method, path string
				body               any
				status             int
				check              func(t *testing.T, r resp)
			}{
				{"create", "POST", "/api/v1/blueprints/thing/entities", M{"identifier": id, "properties": M{"n": 1}, "relations": M{"parent": parent}}, 201, wantEntity(id, 1)},
				{"get", "GET", path, nil, 200, wantEntity(id, 1)},
				{"put", "PUT", path, M{"properties": M{"n": 2}, "relations": M{"parent": parent}}, 200, wantEntity(id, 2)},
				{"put with the identifier in the body", "PUT", path, M{"identifier": id, "properties": M{"n": 3}, "relations": M{"parent": parent}}, 200, wantEntity(id, 3)},
				{"patch", "PATCH", path, M{"properties": M{"n": 4}}, 200, wantEntity(id, 4)},
				{"history", "GET", path + "/history", nil, 200, func(t *testing.T, r resp) {
					events := r.obj(t)["events"].([]any)
					if len(events) != 4 {
						t.Fatalf("%d events, want 4: %s", len(events), r.Raw)
					}
					for _, ev := range events {
						if got := ev.(M)["identifier"]; got != id {
							t.Errorf("event identifier %v, want %q", got, id)
						}
					}
				}},
				{"related", "GET", path + "/related", nil, 200, func(t *testing.T, r resp) {
					down := r.obj(t)["downstream"].([]any)
					if len(down) != 1 || down[0].(M)["ref"].(M)["identifier"] != parent || down[0].(M)["via"].(M)["identifier"] != id {
						t.Errorf("downstream %s", r.Raw)
					}
				}},
				{"related of the target", "GET", things + url.PathEscape(parent) + "/related?direction=upstream", nil, 200, func(t *testing.T, r resp) {
					up := r.obj(t)["upstream"].([]any)
					if len(up) != 1 || up[0].(M)["ref"].(M)["identifier"] != id {
						t.Errorf("upstream %s", r.Raw)
					}
				}},
				{"delete", "DELETE", path, nil, 200, nil},
				{"get deleted", "GET", path, nil, 404, func(t *testing.T, r resp) {
					if msg := decodeError(t, r.Raw).Error.Message; strings.Contains(msg, "no route") {
						t.Errorf("the route did not match: %s", msg)
					}
				}},
				{"put creates", "PUT", path, M{"properties": M{"n": 5}}, 201, wantEntity(id, 5)},
			}
			for _, s := range steps {
				r := e.do(s.method, s.path, s.body)
				if r.Status != s.status {
					t.Fatalf("%s: %s %s: status %d, want %d: %.500s", s.name, s.method, s.path, r.Status, s.status, r.Raw)
				}
				if s.check != nil {
					s.check(t, r)
				}
			}
		})
	}
}

// wantEntity checks a response is the entity thing/id with property n.
func wantEntity(id string, n float64) func(t *testing.T, r resp) {
	return func(t *testing.T, r resp) {
		t.Helper()
		o := r.obj(t)
		if o["identifier"] != id || o["blueprint"] != "thing" || o["properties"].(M)["n"] != n {
			t.Errorf("entity %s, want thing/%s with n %v", r.Raw, id, n)
		}
	}
}

// TestPathEscapes: other escapes decode as before, and an unescaped "/"
// never reaches an identifier.
func TestPathEscapes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.must(201, "PUT", "/api/v1/blueprints/thing", thingBlueprint)
	const things = "/api/v1/blueprints/thing/entities/"
	e.must(201, "PUT", things+"a", M{})

	if got := e.must(201, "PUT", things+"x%40y%2Bz", M{}).obj(t)["identifier"]; got != "x@y+z" {
		t.Errorf("x%%40y%%2Bz created %v, want x@y+z", got)
	}
	if got := e.must(200, "GET", things+"x@y+z", nil).obj(t)["identifier"]; got != "x@y+z" {
		t.Errorf("x@y+z read %v", got)
	}
	// Not identifiers: rejected as the decoded value, as before (the body
	// names the same identifier, so there is no "identifier mismatch").
	for _, raw := range []string{"x%20y", "%C3%A9t%C3%A9", "%2Fleading"} {
		id, _ := url.PathUnescape(raw)
		r := e.do("PUT", things+raw, M{"identifier": id})
		if msg := checkError(t, r, 422, "validation_failed", []string{"/identifier"}).Error.Message; msg != "invalid entity" {
			t.Errorf("PUT %s: %s", raw, r.Raw)
		}
	}

	// An unescaped "/" is a path separator: no route, whatever the method
	// (and no redirect for a trailing one, which would be built from the
	// decoded path: a%2Fhistory/ is not the history of a).
	for _, c := range []struct{ method, path string }{
		{"GET", things + "octo/repo"},
		{"PUT", things + "octo/repo"},
		{"PATCH", things + "octo/repo"},
		{"DELETE", things + "octo/repo"},
		{"GET", things + "prod/default/Deployment/web/history"},
		{"GET", things + "a%2Fhistory/"},
		{"GET", things + "a/"},
	} {
		r := e.do(c.method, c.path, M{})
		if checkError(t, r, 404, "not_found", nil); !strings.Contains(string(r.Raw), "no route") {
			t.Errorf("%s %s: %s", c.method, c.path, r.Raw)
		}
	}
}

// TestSlashedIdentifierMiddlewares: the guard, audit and metrics see the
// route and the decoded identifier of a %2F path.
func TestSlashedIdentifierMiddlewares(t *testing.T) {
	t.Parallel()
	e := newAccessEnv(t, access.Options{})
	e.must(201, "PUT", "/api/v1/blueprints/open", openBlueprint)
	path := "/api/v1/blueprints/open/entities/octo%2Frepo"
	e.must(201, "PUT", path, M{"properties": M{"tier": 1}})
	e.user("m@example.com", "member")
	_, reader := e.mint("m@example.com", "read")
	forbidden(t, e.as(reader, "PATCH", path, M{"properties": M{"tier": 2}}), "write")
	e.must(200, "PATCH", path, M{"properties": M{"tier": 2}})

	entries := auditEntries(t, e.must(200, "GET", "/api/v1/audit?kind=request&identifier=octo%2Frepo", nil))
	if len(entries) != 3 {
		t.Fatalf("%d entries for octo/repo, want 3: %v", len(entries), entries)
	}
	for _, x := range entries {
		if x["blueprint"] != "open" || x["identifier"] != "octo/repo" || x["route"] != "/api/v1/blueprints/:bp/entities/:id" ||
			x["path"] != path || x["resource"] != "entity/open/octo/repo" {
			t.Errorf("audit entry %v", x)
		}
	}
	if patch := entries[0]; patch["status"] != 200.0 || patch["after"].(M)["identifier"] != "octo/repo" {
		t.Errorf("patch entry %v", patch)
	}

	metrics := string(e.must(200, "GET", "/metrics", nil).Raw)
	if !strings.Contains(metrics, `route="/api/v1/blueprints/:bp/entities/:id"`) {
		t.Errorf("no metrics for the entity route")
	}
}

// TestOtherIdentifiersWithSlash: blueprint, action and workflow
// identifiers follow the same pattern, so their routes take %2F too.
func TestOtherIdentifiersWithSlash(t *testing.T) {
	t.Parallel()
	e := newActionsEnv(t, nil)
	wantID := func(id string) func(t *testing.T, r resp) {
		return func(t *testing.T, r resp) {
			t.Helper()
			if got := r.obj(t)["identifier"]; got != id {
				t.Errorf("identifier %v, want %q: %s", got, id, r.Raw)
			}
		}
	}
	flow := M{"steps": []M{{"id": "pause", "type": "sleep", "duration": "1s"}}}
	steps := []struct {
		name, method, path string
		body               any
		status             int
		check              func(t *testing.T, r resp)
	}{
		{"put blueprint", "PUT", "/api/v1/blueprints/k8s%2Fdeployment", M{"schema": M{"properties": M{}}}, 201, wantID("k8s/deployment")},
		{"get blueprint", "GET", "/api/v1/blueprints/k8s%2Fdeployment", nil, 200, wantID("k8s/deployment")},
		{"entity of it", "PUT", "/api/v1/blueprints/k8s%2Fdeployment/entities/prod%2Fweb", M{}, 201, func(t *testing.T, r resp) {
			if o := r.obj(t); o["blueprint"] != "k8s/deployment" || o["identifier"] != "prod/web" {
				t.Errorf("entity %s", r.Raw)
			}
		}},
		{"put workflow", "PUT", "/api/v1/workflows/ci%2Fflow", flow, 201, wantID("ci/flow")},
		{"get workflow", "GET", "/api/v1/workflows/ci%2Fflow", nil, 200, wantID("ci/flow")},
		{"put action", "PUT", "/api/v1/actions/ci%2Fdeploy", M{"blueprint": "service", "operation": "DAY-2", "invocation": M{"type": "workflow", "workflow": "ci/flow"}}, 201, wantID("ci/deploy")},
		{"get action", "GET", "/api/v1/actions/ci%2Fdeploy", nil, 200, wantID("ci/deploy")},
		{"trigger action", "POST", "/api/v1/actions/ci%2Fdeploy/runs", M{"entity": "checkout"}, 503, nil}, // the route matched; no Temporal
		{"delete action", "DELETE", "/api/v1/actions/ci%2Fdeploy", nil, 204, nil},
		{"get deleted action", "GET", "/api/v1/actions/ci%2Fdeploy", nil, 404, nil},
	}
	for _, s := range steps {
		r := e.do(s.method, s.path, s.body)
		if r.Status != s.status {
			t.Fatalf("%s: %s %s: status %d, want %d: %.500s", s.name, s.method, s.path, r.Status, s.status, r.Raw)
		}
		if r.Status >= 400 && strings.Contains(string(r.Raw), "no route") {
			t.Fatalf("%s: %s %s: the route did not match: %s", s.name, s.method, s.path, r.Raw)
		}
		if s.check != nil {
			s.check(t, r)
		}
	}
}
