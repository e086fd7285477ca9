package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/api"
	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/core/catalog/rediscatalog"
)

// token is the bootstrap admin token every test server accepts.
const token = "T"

// M is a JSON object.
type M = map[string]any

// env is one portal over its own miniredis.
type env struct {
	t   *testing.T
	srv *httptest.Server
}

func newEnv(t *testing.T) *env {
	return newEnvWith(t, &redis.Options{})
}

// newEnvWith is newEnv over Redis options, with the API configuration
// adjusted by tweaks.
func newEnvWith(t *testing.T, opts *redis.Options, tweaks ...func(*api.Config)) *env {
	t.Helper()
	mr := miniredis.RunT(t)
	opts.Addr = mr.Addr()
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	svc := catalog.NewService(rediscatalog.New(rdb, rediscatalog.Options{}), catalog.Options{})
	cfg := api.Config{Catalog: svc, Auth: api.AdminToken(token)}
	for _, tweak := range tweaks {
		tweak(&cfg)
	}
	srv := httptest.NewServer(api.New(cfg))
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv}
}

// resp is one HTTP response, body read.
type resp struct {
	Status int
	Header http.Header
	Raw    []byte
}

// obj decodes the body as a JSON object.
func (r resp) obj(t *testing.T) M {
	t.Helper()
	var m M
	if err := json.Unmarshal(r.Raw, &m); err != nil {
		t.Fatalf("response is not a JSON object (%v): %.300s", err, r.Raw)
	}
	return m
}

// do sends an authenticated request. body is nil (none), a string or
// []byte (sent as is) or anything else (sent as JSON).
func (e *env) do(method, path string, body any) resp {
	e.t.Helper()
	return e.doAuth(method, path, body, "Bearer "+token)
}

func (e *env) doAuth(method, path string, body any, auth string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp{Status: res.StatusCode, Header: res.Header, Raw: raw}
}

// must sends a request and fails the test unless it answers want.
func (e *env) must(want int, method, path string, body any) resp {
	e.t.Helper()
	r := e.do(method, path, body)
	if r.Status != want {
		e.t.Fatalf("%s %s: status %d, want %d: %.500s", method, path, r.Status, want, r.Raw)
	}
	return r
}

// apiError is the one error shape of DESIGN §4.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Details []struct {
			Path    string `json:"path"`
			Message string `json:"message"`
		} `json:"details"`
	} `json:"error"`
}

// decodeError strictly decodes an error body: no other fields anywhere.
func decodeError(t *testing.T, raw []byte) apiError {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var e apiError
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("not the error shape (%v): %.500s", err, raw)
	}
	if e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("error without code or message: %s", raw)
	}
	for _, d := range e.Error.Details {
		if !strings.HasPrefix(d.Path, "/") || d.Message == "" {
			t.Fatalf("detail without a JSON pointer or message: %s", raw)
		}
	}
	return e
}

// checkError asserts status, error code and (when paths is not nil) the
// exact set of detail paths.
func checkError(t *testing.T, r resp, status int, code string, paths []string) apiError {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %.500s", r.Status, status, r.Raw)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error Content-Type %q", ct)
	}
	e := decodeError(t, r.Raw)
	if e.Error.Code != code {
		t.Errorf("code %q, want %q: %s", e.Error.Code, code, r.Raw)
	}
	if paths != nil {
		var got []string
		for _, d := range e.Error.Details {
			got = append(got, d.Path)
		}
		sort.Strings(got)
		want := slices.Clone(paths)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("detail paths %q, want %q: %s", got, want, r.Raw)
		}
	}
	return e
}

// ---------------------------------------------------------------------------
// Fixtures

var teamBlueprint = M{
	"identifier": "team", "title": "Team",
	"schema": M{"properties": M{"slackChannel": M{"type": "string"}}},
}

// serviceBlueprint is the blueprint of DESIGN §4.
const serviceBlueprint = `{"identifier": "service", "title": "Service", "description": "", "icon": "",
 "schema": {"properties": {"language": {"type": "string", "enum": ["go", "python"]},
                           "tier": {"type": "integer", "minimum": 1, "maximum": 3},
                           "expiresAt": {"type": "string", "format": "timer"}},
            "required": ["language"]},
 "relations": {"owner": {"title": "Owner", "target": "team", "many": false, "required": false},
               "dependsOn": {"target": "service", "many": true}},
 "calculationProperties": {"url": {"type": "string", "jq": "\"https://svc/\" + .identifier"}},
 "mirrorProperties": {"ownerSlack": {"path": "owner.slackChannel"}}}`

var deploymentBlueprint = M{
	"identifier": "deployment",
	"schema":     M{"properties": M{"version": M{"type": "string"}}},
	"relations":  M{"service": M{"target": "service", "required": true}},
}

// seed creates the team, service and deployment blueprints and a small
// catalog:
//
//	teams payments (#payments), platform (#platform)
//	services cart (go, 3, platform), pricing (python, 1, payments),
//	         checkout (go, 1, team payments, owner payments, dependsOn cart+pricing)
//	deployment checkout-prod → checkout (required)
func seed(e *env) {
	e.t.Helper()
	e.must(201, "PUT", "/api/v1/blueprints/team", teamBlueprint)
	e.must(201, "PUT", "/api/v1/blueprints/service", serviceBlueprint)
	e.must(201, "PUT", "/api/v1/blueprints/deployment", deploymentBlueprint)
	e.must(201, "PUT", "/api/v1/blueprints/team/entities/payments", M{"title": "Payments", "properties": M{"slackChannel": "#payments"}})
	e.must(201, "PUT", "/api/v1/blueprints/team/entities/platform", M{"properties": M{"slackChannel": "#platform"}})
	e.must(201, "PUT", "/api/v1/blueprints/service/entities/cart", M{"properties": M{"language": "go", "tier": 3}, "relations": M{"owner": "platform"}})
	e.must(201, "PUT", "/api/v1/blueprints/service/entities/pricing", M{"properties": M{"language": "python", "tier": 1}, "relations": M{"owner": "payments"}})
	e.must(201, "PUT", "/api/v1/blueprints/service/entities/checkout", `{"identifier": "checkout", "title": "Checkout", "team": ["payments"],
 "properties": {"language": "go", "tier": 1},
 "relations": {"owner": "payments", "dependsOn": ["cart", "pricing"]}}`)
	e.must(201, "PUT", "/api/v1/blueprints/deployment/entities/checkout-prod", M{"properties": M{"version": "1.0"}, "relations": M{"service": "checkout"}})
}

// ---------------------------------------------------------------------------
// Auth and the open endpoints

func TestAuthRequiredOnEveryV1Route(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seed(e)
	routes := []struct{ method, path, body string }{
		{"GET", "/api/v1/blueprints", ""},
		{"POST", "/api/v1/blueprints", `{"identifier":"x","schema":{}}`},
		{"GET", "/api/v1/blueprints/service", ""},
		{"PUT", "/api/v1/blueprints/x", `{"schema":{}}`},
		{"DELETE", "/api/v1/blueprints/team", ""},
		{"GET", "/api/v1/blueprints/service/entities", ""},
		{"POST", "/api/v1/blueprints/team/entities", `{"identifier":"x"}`},
		{"GET", "/api/v1/blueprints/service/entities/checkout", ""},
		{"PUT", "/api/v1/blueprints/team/entities/x", `{}`},
		{"PATCH", "/api/v1/blueprints/team/entities/payments", `{"title":"hacked"}`},
		{"DELETE", "/api/v1/blueprints/team/entities/platform", ""},
		{"GET", "/api/v1/blueprints/service/entities/checkout/history", ""},
		{"GET", "/api/v1/blueprints/service/entities/checkout/related", ""},
		{"POST", "/api/v1/entities/bulk", `{"entities":[{"blueprint":"team","identifier":"x"}]}`},
		{"POST", "/api/v1/entities/search", `{}`},
		{"GET", "/api/v1/events?after=0", ""},
	}
	auths := []struct{ name, header string }{
		{"no header", ""},
		{"wrong token", "Bearer wrong"},
		{"empty bearer", "Bearer "},
		{"token prefix", "Bearer TT"},
		{"basic scheme", "Basic VDpU"},
		{"bare token", token},
	}
	for _, rt := range routes {
		for _, a := range auths {
			t.Run(rt.method+" "+rt.path+"/"+a.name, func(t *testing.T) {
				var body any
				if rt.body != "" {
					body = rt.body
				}
				r := e.doAuth(rt.method, rt.path, body, a.header)
				checkError(t, r, http.StatusUnauthorized, "unauthorized", nil)
				if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate = %q", r.Header.Get("WWW-Authenticate"))
				}
			})
		}
	}
	// Nothing the unauthenticated requests tried was done.
	e.must(404, "GET", "/api/v1/blueprints/x", nil)
	e.must(404, "GET", "/api/v1/blueprints/team/entities/x", nil)
	e.must(200, "GET", "/api/v1/blueprints/team/entities/platform", nil)
	if got := e.must(200, "GET", "/api/v1/blueprints/team/entities/payments", nil).obj(t)["title"]; got != "Payments" {
		t.Errorf("payments title = %v after unauthenticated PATCH", got)
	}
	// The scheme is case-insensitive (RFC 7235); the right token works.
	for _, h := range []string{"Bearer " + token, "bearer " + token, "BEARER " + token} {
		if r := e.doAuth("GET", "/api/v1/blueprints", nil, h); r.Status != 200 {
			t.Errorf("Authorization %q: status %d", h, r.Status)
		}
	}
}

func TestOpenEndpoints(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.must(200, "GET", "/api/v1/blueprints", nil) // something for /metrics to count

	r := e.doAuth("GET", "/healthz", nil, "")
	if r.Status != 200 || r.obj(t)["status"] != "ok" {
		t.Errorf("healthz: %d %s", r.Status, r.Raw)
	}
	r = e.doAuth("GET", "/readyz", nil, "")
	if r.Status != 200 {
		t.Fatalf("readyz: %d %s", r.Status, r.Raw)
	}
	if m := r.obj(t); m["status"] != "ready" || m["checks"].(M)["redis"] != "ok" {
		t.Errorf("readyz body %s", r.Raw)
	}
	r = e.doAuth("GET", "/metrics", nil, "")
	if r.Status != 200 || !bytes.Contains(r.Raw, []byte("portico_http_requests_total")) ||
		!bytes.Contains(r.Raw, []byte(`route="/api/v1/blueprints"`)) {
		t.Errorf("metrics: %d %.500s", r.Status, r.Raw)
	}

	r = e.doAuth("GET", "/api/v1/openapi.json", nil, "")
	if r.Status != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("openapi: %d %q", r.Status, r.Header.Get("Content-Type"))
	}
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(r.Raw, &doc); err != nil {
		t.Fatalf("openapi.json does not parse: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi version %q", doc.OpenAPI)
	}
	for path, methods := range map[string][]string{
		"/healthz":                              {"get"},
		"/readyz":                               {"get"},
		"/metrics":                              {"get"},
		"/api/v1/blueprints":                    {"get", "post"},
		"/api/v1/blueprints/{bp}":               {"get", "put", "delete"},
		"/api/v1/blueprints/{bp}/entities":      {"get", "post"},
		"/api/v1/blueprints/{bp}/entities/{id}": {"get", "put", "patch", "delete"},
		"/api/v1/blueprints/{bp}/entities/{id}/history": {"get"},
		"/api/v1/blueprints/{bp}/entities/{id}/related": {"get"},
		"/api/v1/entities/bulk":                         {"post"},
		"/api/v1/entities/search":                       {"post"},
		"/api/v1/events":                                {"get"},
	} {
		for _, m := range methods {
			if doc.Paths[path][m] == nil {
				t.Errorf("openapi.json lacks %s %s", strings.ToUpper(m), path)
			}
		}
	}

	// Unknown routes and methods answer in the error shape too.
	checkError(t, e.do("GET", "/api/v1/nothing-here", nil), 404, "not_found", nil)
	checkError(t, e.doAuth("GET", "/nope", nil, ""), 404, "not_found", nil)
	checkError(t, e.do("PATCH", "/api/v1/blueprints", "{}"), 405, "method_not_allowed", nil)
}

// ---------------------------------------------------------------------------
// Blueprints

func TestBlueprints(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	// POST creates, then refuses to overwrite.
	r := e.must(201, "POST", "/api/v1/blueprints", teamBlueprint)
	created := r.obj(t)
	if created["identifier"] != "team" || created["title"] != "Team" {
		t.Errorf("created blueprint %s", r.Raw)
	}
	for _, f := range []string{"createdAt", "updatedAt"} {
		if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(created[f])); err != nil {
			t.Errorf("%s = %v", f, created[f])
		}
	}
	changed := M{"identifier": "team", "title": "Teams!", "schema": M{}}
	checkError(t, e.do("POST", "/api/v1/blueprints", changed), 409, "already_exists", nil)
	if got := e.must(200, "GET", "/api/v1/blueprints/team", nil).obj(t)["title"]; got != "Team" {
		t.Errorf("409 POST changed the title to %v", got)
	}

	// PUT: create 201, replace 200, the same again 200 (and untouched).
	r = e.must(201, "PUT", "/api/v1/blueprints/service", serviceBlueprint)
	svc := r.obj(t)
	if svc["identifier"] != "service" || svc["relations"].(M)["owner"].(M)["target"] != "team" ||
		svc["calculationProperties"].(M)["url"] == nil || svc["mirrorProperties"].(M)["ownerSlack"] == nil {
		t.Errorf("PUT create body %s", r.Raw)
	}
	replaced := strings.Replace(serviceBlueprint, `"title": "Service"`, `"title": "Services"`, 1)
	r = e.must(200, "PUT", "/api/v1/blueprints/service", replaced)
	first := r.obj(t)
	if first["title"] != "Services" || first["createdAt"] != svc["createdAt"] {
		t.Errorf("replace: %s (created %v)", r.Raw, svc["createdAt"])
	}
	r = e.must(200, "PUT", "/api/v1/blueprints/service", replaced)
	if again := r.obj(t); again["updatedAt"] != first["updatedAt"] {
		t.Errorf("identical PUT rewrote the blueprint: updatedAt %v → %v", first["updatedAt"], again["updatedAt"])
	}
	// The identifier may be left out of a PUT body: the URL names it.
	e.must(201, "PUT", "/api/v1/blueprints/deployment", M{"schema": M{}, "relations": M{"service": M{"target": "service", "required": true}}})

	// GET one and the list (ordered by identifier).
	if got := e.must(200, "GET", "/api/v1/blueprints/service", nil).obj(t); got["title"] != "Services" {
		t.Errorf("GET service: %v", got)
	}
	checkError(t, e.do("GET", "/api/v1/blueprints/nope", nil), 404, "not_found", nil)
	var list struct {
		Blueprints []struct {
			Identifier string `json:"identifier"`
		} `json:"blueprints"`
	}
	if err := json.Unmarshal(e.must(200, "GET", "/api/v1/blueprints", nil).Raw, &list); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, b := range list.Blueprints {
		ids = append(ids, b.Identifier)
	}
	if want := []string{"deployment", "service", "team"}; !slices.Equal(ids, want) {
		t.Errorf("list = %v, want %v", ids, want)
	}

	// Identifier mismatch between body and URL: 422 at /identifier, nothing written.
	r = e.do("PUT", "/api/v1/blueprints/other", M{"identifier": "team", "title": "Hijack", "schema": M{}})
	checkError(t, r, 422, "validation_failed", []string{"/identifier"})
	e.must(404, "GET", "/api/v1/blueprints/other", nil)
	if got := e.must(200, "GET", "/api/v1/blueprints/team", nil).obj(t)["title"]; got != "Team" {
		t.Errorf("mismatched PUT touched team: title %v", got)
	}

	// A relation to a missing blueprint, an invalid identifier, a bad schema.
	checkError(t, e.do("PUT", "/api/v1/blueprints/x", M{"schema": M{}, "relations": M{"r": M{"target": "ghost"}}}),
		422, "validation_failed", []string{"/relations/r/target"})
	checkError(t, e.do("PUT", "/api/v1/blueprints/bad%20id!", M{"schema": M{}}), 422, "validation_failed", []string{"/identifier"})
	checkError(t, e.do("POST", "/api/v1/blueprints", M{"identifier": strings.Repeat("b", 201), "schema": M{}}), 422, "validation_failed", []string{"/identifier"})
	r = e.do("PUT", "/api/v1/blueprints/x", M{"schema": M{"properties": M{"p": M{"type": "strin"}}}})
	if checkError(t, r, 422, "validation_failed", nil); !strings.Contains(string(r.Raw), `"/schema/properties/p`) {
		t.Errorf("bad property type not located: %s", r.Raw)
	}
	checkError(t, e.do("PUT", "/api/v1/blueprints/x", M{"schema": M{}, "colour": "red"}), 400, "malformed_request", nil)
	e.must(404, "GET", "/api/v1/blueprints/x", nil)

	// A change that would invalidate existing entities is refused, listing them.
	e.must(201, "PUT", "/api/v1/blueprints/team/entities/payments", M{"properties": M{"slackChannel": "#payments"}})
	r = e.do("PUT", "/api/v1/blueprints/team", M{"schema": M{"properties": M{"slackChannel": M{"type": "integer"}}}})
	checkError(t, r, 422, "validation_failed", []string{"/entities/payments/properties/slackChannel"})
	if got := e.must(200, "GET", "/api/v1/blueprints/team", nil).obj(t); got["schema"].(M)["properties"].(M)["slackChannel"].(M)["type"] != "string" {
		t.Errorf("refused change was applied: %v", got)
	}

	// DELETE: 409 while entities exist or a relation targets it, 204 when free.
	checkError(t, e.do("DELETE", "/api/v1/blueprints/team", nil), 409, "in_use", nil)
	checkError(t, e.do("DELETE", "/api/v1/blueprints/service", nil), 409, "in_use", nil) // deployment.service targets it
	e.must(200, "GET", "/api/v1/blueprints/team", nil)
	r = e.must(204, "DELETE", "/api/v1/blueprints/deployment", nil)
	if len(r.Raw) != 0 {
		t.Errorf("204 with a body: %q", r.Raw)
	}
	checkError(t, e.do("GET", "/api/v1/blueprints/deployment", nil), 404, "not_found", nil)
	checkError(t, e.do("DELETE", "/api/v1/blueprints/deployment", nil), 404, "not_found", nil)
}

// ---------------------------------------------------------------------------
// Entities

func TestEntities(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seed(e)
	const checkout = "/api/v1/blueprints/service/entities/checkout"

	// GET: stored fields, computed properties and meta fields.
	r := e.must(200, "GET", checkout, nil)
	got := r.obj(t)
	want := M{
		"identifier": "checkout", "title": "Checkout", "blueprint": "service",
		"team":       []any{"payments"},
		"properties": M{"language": "go", "tier": 1.0, "url": "https://svc/checkout", "ownerSlack": "#payments"},
		"relations":  M{"owner": "payments", "dependsOn": []any{"cart", "pricing"}},
		"createdBy":  "admin", "updatedBy": "admin", "datasource": "user:admin",
	}
	for k, v := range want {
		if !jsonEqual(got[k], v) {
			t.Errorf("GET checkout %s = %v, want %v", k, got[k], v)
		}
	}
	created := parseTime(t, got["createdAt"])
	if updated := parseTime(t, got["updatedAt"]); !updated.Equal(created) {
		t.Errorf("new entity: updatedAt %v != createdAt %v", updated, created)
	}
	if time.Since(created) > time.Minute || time.Since(created) < 0 {
		t.Errorf("createdAt %v is not now", created)
	}

	// PUT again with a change: 200, replaced (not merged), createdAt kept.
	r = e.must(200, "PUT", checkout, M{"title": "Checkout", "team": []string{"payments"}, "properties": M{"language": "go"}, "relations": M{"owner": "payments", "dependsOn": []string{"cart", "pricing"}}})
	put := r.obj(t)
	if _, ok := put["properties"].(M)["tier"]; ok {
		t.Errorf("PUT merged instead of replacing: %s", r.Raw)
	}
	if put["createdAt"] != got["createdAt"] || !parseTime(t, put["updatedAt"]).After(created) {
		t.Errorf("PUT timestamps: created %v→%v updated %v", got["createdAt"], put["createdAt"], put["updatedAt"])
	}
	// The same PUT again: 200 and not rewritten.
	r = e.must(200, "PUT", checkout, M{"title": "Checkout", "team": []string{"payments"}, "properties": M{"language": "go"}, "relations": M{"owner": "payments", "dependsOn": []string{"cart", "pricing"}}})
	if r.obj(t)["updatedAt"] != put["updatedAt"] {
		t.Errorf("identical PUT rewrote the entity")
	}
	// Echoing computed properties back is harmless.
	e.must(200, "PUT", checkout, M{"title": "Checkout", "team": []string{"payments"}, "properties": M{"language": "go", "url": "x", "ownerSlack": "y"}, "relations": M{"owner": "payments", "dependsOn": []string{"cart", "pricing"}}})

	// POST creates (201) and refuses an existing identifier (409).
	r = e.must(201, "POST", "/api/v1/blueprints/service/entities", M{"identifier": "search", "properties": M{"language": "go", "tier": 2}, "relations": M{"owner": "platform"}})
	if m := r.obj(t); m["blueprint"] != "service" || m["properties"].(M)["url"] != "https://svc/search" || m["properties"].(M)["ownerSlack"] != "#platform" {
		t.Errorf("POST body %s", r.Raw)
	}
	checkError(t, e.do("POST", "/api/v1/blueprints/service/entities", M{"identifier": "search", "properties": M{"language": "python"}}), 409, "already_exists", nil)
	if got := e.must(200, "GET", "/api/v1/blueprints/service/entities/search", nil).obj(t)["properties"].(M)["language"]; got != "go" {
		t.Errorf("409 POST overwrote: language %v", got)
	}

	// PATCH merges; null removes a property; relations merge too.
	before := e.must(200, "GET", "/api/v1/blueprints/service/entities/search", nil).obj(t)
	r = e.must(200, "PATCH", "/api/v1/blueprints/service/entities/search", `{"title": "Search", "properties": {"tier": null, "language": "python"}}`)
	p := r.obj(t)
	if p["title"] != "Search" || p["properties"].(M)["language"] != "python" || p["relations"].(M)["owner"] != "platform" {
		t.Errorf("PATCH result %s", r.Raw)
	}
	if _, ok := p["properties"].(M)["tier"]; ok {
		t.Errorf("PATCH null did not remove tier: %s", r.Raw)
	}
	if p["createdAt"] != before["createdAt"] || p["createdBy"] != "admin" || !parseTime(t, p["updatedAt"]).After(parseTime(t, before["updatedAt"])) {
		t.Errorf("PATCH meta: before %v after %v", before, p)
	}
	if g := e.must(200, "GET", "/api/v1/blueprints/service/entities/search", nil).obj(t); !jsonEqual(g, p) {
		t.Errorf("GET after PATCH %v, PATCH answered %v", g, p)
	}
	r = e.must(200, "PATCH", "/api/v1/blueprints/service/entities/search", M{"relations": M{"owner": nil, "dependsOn": []string{"checkout"}}})
	if m := r.obj(t); m["properties"].(M)["ownerSlack"] != nil || !jsonEqual(m["relations"], M{"dependsOn": []any{"checkout"}}) {
		t.Errorf("PATCH relations: %s", r.Raw)
	}
	checkError(t, e.do("PATCH", "/api/v1/blueprints/service/entities/ghost", M{"title": "x"}), 404, "not_found", nil)
	e.must(404, "GET", "/api/v1/blueprints/service/entities/ghost", nil)
	checkError(t, e.do("PATCH", "/api/v1/blueprints/service/entities/search", M{"identifier": "renamed"}), 422, "validation_failed", []string{"/identifier"})
	checkError(t, e.do("PATCH", "/api/v1/blueprints/service/entities/search", M{"createdBy": "mallory"}), 422, "validation_failed", []string{"/createdBy"})

	// Mirror properties follow the related entity.
	e.must(200, "PATCH", "/api/v1/blueprints/team/entities/payments", M{"properties": M{"slackChannel": "#pay"}})
	if got := e.must(200, "GET", checkout, nil).obj(t)["properties"].(M)["ownerSlack"]; got != "#pay" {
		t.Errorf("mirror after the team changed: %v", got)
	}

	// DELETE: 409 while a required relation points here; nothing deleted.
	r = e.do("DELETE", checkout, nil)
	if checkError(t, r, 409, "in_use", nil); !strings.Contains(string(r.Raw), "checkout-prod") {
		t.Errorf("409 does not name the blocker: %s", r.Raw)
	}
	e.must(200, "GET", checkout, nil)
	e.must(200, "GET", "/api/v1/blueprints/deployment/entities/checkout-prod", nil)
	// ?cascade=true deletes the dependants too; optional relations are cleared.
	r = e.must(200, "DELETE", checkout+"?cascade=true", nil)
	var del struct {
		Deleted []catalog.Ref `json:"deleted"`
	}
	if err := json.Unmarshal(r.Raw, &del); err != nil {
		t.Fatal(err)
	}
	if want := []catalog.Ref{{Blueprint: "service", Identifier: "checkout"}, {Blueprint: "deployment", Identifier: "checkout-prod"}}; !slices.Equal(del.Deleted, want) {
		t.Errorf("deleted = %v, want %v", del.Deleted, want)
	}
	checkError(t, e.do("GET", checkout, nil), 404, "not_found", nil)
	checkError(t, e.do("GET", "/api/v1/blueprints/deployment/entities/checkout-prod", nil), 404, "not_found", nil)
	if got := e.must(200, "GET", "/api/v1/blueprints/service/entities/search", nil).obj(t)["relations"].(M)["dependsOn"]; !jsonEqual(got, []any{}) {
		t.Errorf("search still depends on the deleted checkout: %v", got)
	}
	// An entity nothing requires deletes without cascade; optional owners detach.
	e.must(200, "DELETE", "/api/v1/blueprints/team/entities/platform", nil)
	if got := e.must(200, "GET", "/api/v1/blueprints/service/entities/cart", nil).obj(t); got["relations"].(M)["owner"] != nil || got["properties"].(M)["ownerSlack"] != nil {
		t.Errorf("cart still owned by the deleted platform: %v", got)
	}
	checkError(t, e.do("DELETE", checkout, nil), 404, "not_found", nil)
	checkError(t, e.do("DELETE", "/api/v1/blueprints/nope/entities/x", nil), 404, "not_found", nil)
}

func TestEntityListPaging(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.must(201, "PUT", "/api/v1/blueprints/team", teamBlueprint)
	e.must(201, "PUT", "/api/v1/blueprints/service", serviceBlueprint)
	names := []string{"e", "a", "d", "b", "c"}
	for _, n := range names {
		e.must(201, "PUT", "/api/v1/blueprints/service/entities/"+n, M{"properties": M{"language": "go"}})
	}
	slices.Sort(names)

	for _, limit := range []int{1, 2, 3, 5, 7} {
		t.Run(fmt.Sprint("limit=", limit), func(t *testing.T) {
			var seen []string
			cursor := ""
			for pages := 0; ; pages++ {
				if pages > len(names) {
					t.Fatal("paging does not end")
				}
				path := fmt.Sprintf("/api/v1/blueprints/service/entities?limit=%d", limit)
				if cursor != "" {
					path += "&cursor=" + url.QueryEscape(cursor)
				}
				page := decodePage(t, e.must(200, "GET", path, nil))
				if page.Total != len(names) {
					t.Errorf("total = %d", page.Total)
				}
				if len(page.Entities) > limit || len(page.Entities) == 0 {
					t.Fatalf("page of %d entities with limit %d", len(page.Entities), limit)
				}
				for _, en := range page.Entities {
					if en["blueprint"] != "service" || en["properties"].(M)["url"] != "https://svc/"+en["identifier"].(string) {
						t.Errorf("listed entity %v", en)
					}
					seen = append(seen, en["identifier"].(string))
				}
				if page.Next == nil {
					break
				}
				cursor = *page.Next
			}
			if !slices.Equal(seen, names) {
				t.Errorf("paged through %v, want %v", seen, names)
			}
		})
	}
	// Default limit, empty blueprint, unknown blueprint.
	if page := decodePage(t, e.must(200, "GET", "/api/v1/blueprints/service/entities", nil)); len(page.Entities) != 5 || page.Next != nil {
		t.Errorf("default page: %d entities, next %v", len(page.Entities), page.Next)
	}
	r := e.must(200, "GET", "/api/v1/blueprints/team/entities", nil)
	if page := decodePage(t, r); page.Entities == nil || len(page.Entities) != 0 || page.Total != 0 || page.Next != nil {
		t.Errorf("empty list: %s", r.Raw)
	}
	checkError(t, e.do("GET", "/api/v1/blueprints/nope/entities", nil), 404, "not_found", nil)
}

// page is a list or search response.
type page struct {
	Entities []M     `json:"entities"`
	Next     *string `json:"next"`
	Total    int     `json:"total"`
}

func decodePage(t *testing.T, r resp) page {
	t.Helper()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(r.Raw, &raw); err != nil {
		t.Fatalf("page: %v: %s", err, r.Raw)
	}
	for _, k := range []string{"entities", "next", "total"} {
		if _, ok := raw[k]; !ok {
			t.Fatalf("page without %q: %.300s", k, r.Raw)
		}
	}
	var p page
	if err := json.Unmarshal(r.Raw, &p); err != nil {
		t.Fatal(err)
	}
	if p.Next != nil && *p.Next == "" {
		t.Errorf("next is an empty string, not null")
	}
	return p
}

// ---------------------------------------------------------------------------
// Bad input

func TestBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seed(e)
	const checkout = "/api/v1/blueprints/service/entities/checkout"
	snapshot := func() string {
		var b strings.Builder
		b.Write(e.must(200, "GET", "/api/v1/blueprints", nil).Raw)
		for _, bp := range []string{"team", "service", "deployment"} {
			b.Write(e.must(200, "GET", "/api/v1/blueprints/"+bp+"/entities?limit=1000", nil).Raw)
		}
		return b.String()
	}
	// The change stream before: everything after the sentinel must be ours.
	e.must(201, "PUT", "/api/v1/blueprints/team/entities/sentinel-1", M{})
	before := snapshot()

	huge := func(n int) string {
		return `{"identifier": "big", "properties": {"language": "go"}, "title": "` + strings.Repeat("a", n) + `"}`
	}
	long := strings.Repeat("x", 201)
	cases := []struct {
		name         string
		method, path string
		body         string
		status       int
		code         string
		paths        []string // nil: not checked
		gone         string   // a path that must still 404 afterwards
	}{
		{"malformed JSON", "PUT", "/api/v1/blueprints/service/entities/x", `{"identifier": "x", "properties": {`, 400, "malformed_request", []string{}, "/api/v1/blueprints/service/entities/x"},
		{"malformed JSON POST", "POST", "/api/v1/blueprints/service/entities", `{"identifier": "x",,}`, 400, "malformed_request", []string{}, "/api/v1/blueprints/service/entities/x"},
		{"not an object", "PUT", "/api/v1/blueprints/service/entities/x", `["x"]`, 400, "malformed_request", []string{}, "/api/v1/blueprints/service/entities/x"},
		{"empty body", "PUT", "/api/v1/blueprints/service/entities/x", ``, 400, "malformed_request", []string{}, "/api/v1/blueprints/service/entities/x"},
		{"trailing data", "PUT", "/api/v1/blueprints/service/entities/x", `{"properties": {"language": "go"}} {}`, 400, "malformed_request", []string{}, "/api/v1/blueprints/service/entities/x"},
		{"wrong field type", "PUT", "/api/v1/blueprints/service/entities/x", `{"properties": [1]}`, 400, "malformed_request", []string{}, "/api/v1/blueprints/service/entities/x"},
		{"unknown top-level field", "PUT", "/api/v1/blueprints/service/entities/x", `{"properties": {"language": "go"}, "colour": "red"}`, 400, "malformed_request", []string{}, "/api/v1/blueprints/service/entities/x"},
		{"unknown field on replace", "PUT", checkout, `{"properties": {"language": "python"}, "colour": "red"}`, 400, "malformed_request", []string{}, ""},
		{"unknown blueprint field", "POST", "/api/v1/blueprints", `{"identifier": "x", "schema": {}, "colour": "red"}`, 400, "malformed_request", []string{}, "/api/v1/blueprints/x"},
		{"unknown nested blueprint field", "PUT", "/api/v1/blueprints/x", `{"schema": {"properties": {"p": {"type": "string", "colour": 1}}}}`, 400, "malformed_request", []string{}, "/api/v1/blueprints/x"},
		{"malformed blueprint", "PUT", "/api/v1/blueprints/x", `{"schema": `, 400, "malformed_request", []string{}, "/api/v1/blueprints/x"},
		{"malformed patch", "PATCH", checkout, `{"title": `, 400, "malformed_request", []string{}, ""},
		{"patch not an object", "PATCH", checkout, `null`, 400, "malformed_request", []string{}, ""},
		{"unknown search field", "POST", "/api/v1/entities/search", `{"query": null, "colour": 1}`, 400, "malformed_request", []string{}, ""},
		{"malformed bulk", "POST", "/api/v1/entities/bulk", `{"entities": [`, 400, "malformed_request", []string{}, ""},
		{"unknown bulk field", "POST", "/api/v1/entities/bulk", `{"entities": [], "upsert": true}`, 400, "malformed_request", []string{}, ""},
		{"body over 10 MiB", "PUT", "/api/v1/blueprints/service/entities/big", huge(api.MaxBodyBytes), 413, "body_too_large", []string{}, "/api/v1/blueprints/service/entities/big"},
		{"blueprint over 10 MiB", "PUT", "/api/v1/blueprints/big", `{"title": "` + strings.Repeat("a", api.MaxBodyBytes) + `", "schema": {}}`, 413, "body_too_large", []string{}, "/api/v1/blueprints/big"},
		{"bulk over 10 MiB", "POST", "/api/v1/entities/bulk", `{"entities": [` + huge(api.MaxBodyBytes) + `]}`, 413, "body_too_large", []string{}, "/api/v1/blueprints/service/entities/big"},
		{"just under 10 MiB is read", "PUT", "/api/v1/blueprints/service/entities/big", huge(api.MaxBodyBytes - 200), 422, "validation_failed", []string{"/title"}, "/api/v1/blueprints/service/entities/big"},
		{"invalid identifier in URL", "PUT", "/api/v1/blueprints/service/entities/bad%20id!", `{"properties": {"language": "go"}}`, 422, "validation_failed", []string{"/identifier"}, "/api/v1/blueprints/service/entities/bad%20id!"},
		{"invalid identifier in body", "POST", "/api/v1/blueprints/service/entities", `{"identifier": "bad id!", "properties": {"language": "go"}}`, 422, "validation_failed", []string{"/identifier"}, "/api/v1/blueprints/service/entities/bad%20id!"},
		{"201-char identifier", "PUT", "/api/v1/blueprints/service/entities/" + long, `{"properties": {"language": "go"}}`, 422, "validation_failed", []string{"/identifier"}, "/api/v1/blueprints/service/entities/" + long},
		{"identifier starting with a dash", "PUT", "/api/v1/blueprints/service/entities/-x", `{"properties": {"language": "go"}}`, 422, "validation_failed", []string{"/identifier"}, "/api/v1/blueprints/service/entities/-x"},
		{"missing identifier on POST", "POST", "/api/v1/blueprints/service/entities", `{"properties": {"language": "go"}}`, 422, "validation_failed", []string{"/identifier"}, ""},
		{"identifier mismatch", "PUT", "/api/v1/blueprints/service/entities/x", `{"identifier": "checkout", "properties": {"language": "python"}}`, 422, "validation_failed", []string{"/identifier"}, "/api/v1/blueprints/service/entities/x"},
		{"blueprint mismatch", "PUT", "/api/v1/blueprints/service/entities/x", `{"blueprint": "team", "properties": {"language": "go"}}`, 422, "validation_failed", []string{"/blueprint"}, "/api/v1/blueprints/service/entities/x"},
		{"unknown blueprint", "PUT", "/api/v1/blueprints/nope/entities/x", `{}`, 404, "not_found", []string{}, "/api/v1/blueprints/nope/entities/x"},
		{"unknown blueprint POST", "POST", "/api/v1/blueprints/nope/entities", `{"identifier": "x"}`, 404, "not_found", []string{}, "/api/v1/blueprints/nope/entities/x"},
		{"property type mismatch", "PUT", "/api/v1/blueprints/service/entities/x", `{"properties": {"language": "go", "tier": "one"}}`, 422, "validation_failed", []string{"/properties/tier"}, "/api/v1/blueprints/service/entities/x"},
		{"property type mismatch on replace", "PUT", checkout, `{"properties": {"language": "go", "tier": "one"}}`, 422, "validation_failed", []string{"/properties/tier"}, ""},
		{"integer with a fraction", "PUT", "/api/v1/blueprints/service/entities/x", `{"properties": {"language": "go", "tier": 1.5}}`, 422, "validation_failed", []string{"/properties/tier"}, "/api/v1/blueprints/service/entities/x"},
		{"above maximum", "PUT", "/api/v1/blueprints/service/entities/x", `{"properties": {"language": "go", "tier": 4}}`, 422, "validation_failed", []string{"/properties/tier"}, "/api/v1/blueprints/service/entities/x"},
		{"not in enum", "PUT", "/api/v1/blueprints/service/entities/x", `{"properties": {"language": "cobol"}}`, 422, "validation_failed", []string{"/properties/language"}, "/api/v1/blueprints/service/entities/x"},
		{"bad timer", "PUT", "/api/v1/blueprints/service/entities/x", `{"properties": {"language": "go", "expiresAt": "soon"}}`, 422, "validation_failed", []string{"/properties/expiresAt"}, "/api/v1/blueprints/service/entities/x"},
		{"undefined property", "PUT", "/api/v1/blueprints/service/entities/x", `{"properties": {"language": "go", "colour": "red"}}`, 422, "validation_failed", []string{"/properties/colour"}, "/api/v1/blueprints/service/entities/x"},
		{"missing required property", "PUT", "/api/v1/blueprints/service/entities/x", `{"properties": {"tier": 1}}`, 422, "validation_failed", []string{"/properties/language"}, "/api/v1/blueprints/service/entities/x"},
		{"every violation reported", "PUT", "/api/v1/blueprints/service/entities/x", `{"properties": {"tier": "one", "colour": 1}, "relations": {"owner": "ghost"}}`, 422, "validation_failed", []string{"/properties/colour", "/properties/language", "/properties/tier"}, "/api/v1/blueprints/service/entities/x"},
		{"dangling relation", "PUT", "/api/v1/blueprints/service/entities/x", `{"properties": {"language": "go"}, "relations": {"owner": "ghost"}}`, 422, "validation_failed", []string{"/relations/owner"}, "/api/v1/blueprints/service/entities/x"},
		{"dangling many relation", "PUT", "/api/v1/blueprints/service/entities/x", `{"properties": {"language": "go"}, "relations": {"dependsOn": ["cart", "ghost"]}}`, 422, "validation_failed", []string{"/relations/dependsOn/1"}, "/api/v1/blueprints/service/entities/x"},
		{"relation to the wrong blueprint", "PUT", "/api/v1/blueprints/service/entities/x", `{"properties": {"language": "go"}, "relations": {"owner": "cart"}}`, 422, "validation_failed", []string{"/relations/owner"}, "/api/v1/blueprints/service/entities/x"},
		{"undefined relation", "PUT", "/api/v1/blueprints/service/entities/x", `{"properties": {"language": "go"}, "relations": {"friend": "cart"}}`, 422, "validation_failed", []string{"/relations/friend"}, "/api/v1/blueprints/service/entities/x"},
		{"missing required relation", "PUT", "/api/v1/blueprints/deployment/entities/x", `{}`, 422, "validation_failed", []string{"/relations/service"}, "/api/v1/blueprints/deployment/entities/x"},
		{"patch type mismatch", "PATCH", checkout, `{"properties": {"tier": "one"}}`, 422, "validation_failed", []string{"/properties/tier"}, ""},
		{"patch removes required", "PATCH", checkout, `{"properties": {"language": null}}`, 422, "validation_failed", []string{"/properties/language"}, ""},
		{"patch dangling relation", "PATCH", checkout, `{"relations": {"owner": "ghost"}}`, 422, "validation_failed", []string{"/relations/owner"}, ""},
		{"unknown search operator", "POST", "/api/v1/entities/search", `{"query": {"combinator": "and", "rules": [{"property": "tier", "operator": "~=", "value": 1}]}}`, 422, "validation_failed", []string{"/query/rules/0/operator"}, ""},
		{"nested bad search rule", "POST", "/api/v1/entities/search", `{"query": {"combinator": "and", "rules": [{"combinator": "or", "rules": [{"property": "tier", "operator": "in", "value": 1}]}]}}`, 422, "validation_failed", []string{"/query/rules/0/rules/0/value"}, ""},
		{"bad combinator", "POST", "/api/v1/entities/search", `{"query": {"combinator": "xor", "rules": []}}`, 422, "validation_failed", []string{"/query/combinator"}, ""},
		{"search limit 5000", "POST", "/api/v1/entities/search", `{"limit": 5000}`, 422, "validation_failed", []string{"/limit"}, ""},
		{"search negative limit", "POST", "/api/v1/entities/search", `{"limit": -1}`, 422, "validation_failed", []string{"/limit"}, ""},
		{"search bad cursor", "POST", "/api/v1/entities/search", `{"cursor": "???"}`, 422, "validation_failed", []string{"/cursor"}, ""},
		{"search bad sort", "POST", "/api/v1/entities/search", `{"sort": [{"property": "$nope", "order": "sideways"}]}`, 422, "validation_failed", []string{"/sort/0/property", "/sort/0/order"}, ""},
		{"list limit 5000", "GET", "/api/v1/blueprints/service/entities?limit=5000", "", 422, "validation_failed", []string{"/limit"}, ""},
		{"list limit 0", "GET", "/api/v1/blueprints/service/entities?limit=0", "", 422, "validation_failed", []string{"/limit"}, ""},
		{"list limit not a number", "GET", "/api/v1/blueprints/service/entities?limit=ten", "", 422, "validation_failed", []string{"/limit"}, ""},
		{"list bad cursor", "GET", "/api/v1/blueprints/service/entities?cursor=%25%25", "", 422, "validation_failed", []string{"/cursor"}, ""},
		{"bulk without entities", "POST", "/api/v1/entities/bulk", `{}`, 422, "validation_failed", []string{"/entities"}, ""},
		{"related bad depth", "GET", checkout + "/related?depth=9", "", 422, "validation_failed", []string{"/depth"}, ""},
		{"related bad direction", "GET", checkout + "/related?direction=sideways", "", 422, "validation_failed", []string{"/direction"}, ""},
		{"history of a missing entity", "GET", "/api/v1/blueprints/service/entities/ghost/history", "", 404, "not_found", []string{}, ""},
		{"related of a missing entity", "GET", "/api/v1/blueprints/service/entities/ghost/related", "", 404, "not_found", []string{}, ""},
	}
	checkoutBefore := e.must(200, "GET", checkout, nil).Raw
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body any
			if tc.body != "" || tc.method != "GET" {
				body = tc.body
			}
			r := e.do(tc.method, tc.path, body)
			checkError(t, r, tc.status, tc.code, tc.paths)
			if tc.gone != "" {
				checkError(t, e.do("GET", tc.gone, nil), 404, "not_found", nil)
			}
			if got := e.must(200, "GET", checkout, nil).Raw; !bytes.Equal(got, checkoutBefore) {
				t.Errorf("checkout changed:\n%s\n%s", checkoutBefore, got)
			}
		})
	}
	if after := snapshot(); after != before {
		t.Errorf("bad input changed the catalog:\n%s\n%s", before, after)
	}

	// The portal keeps serving, and no rejected write reached the change
	// stream: right after sentinel-1 comes sentinel-2.
	e.must(201, "PUT", "/api/v1/blueprints/team/entities/sentinel-2", M{})
	e.must(201, "PUT", "/api/v1/blueprints/service/entities/x", M{"properties": M{"language": "go"}})
	evs := readEvents(t, e, "0", "", 100, func(evs []sseEvent) bool {
		return len(evs) > 0 && evs[len(evs)-1].Identifier == "x"
	})
	var tail []string
	for i, ev := range evs {
		if ev.Identifier == "sentinel-1" {
			for _, later := range evs[i+1:] {
				tail = append(tail, later.Type+" "+later.Blueprint+"/"+later.Identifier)
			}
		}
	}
	if want := []string{"entity.created team/sentinel-2", "entity.created service/x"}; !slices.Equal(tail, want) {
		t.Errorf("events after sentinel-1: %q, want %q", tail, want)
	}
}

// ---------------------------------------------------------------------------
// Bulk

type bulkResult struct {
	Index      int       `json:"index"`
	Blueprint  string    `json:"blueprint"`
	Identifier string    `json:"identifier"`
	Status     string    `json:"status"`
	Error      *apiError `json:"-"`
}

// decodeBulk strictly decodes a bulk response, checking every error in
// the error shape.
func decodeBulk(t *testing.T, r resp) []bulkResult {
	t.Helper()
	var body struct {
		Results []json.RawMessage `json:"results"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.Raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("bulk body: %v: %.500s", err, r.Raw)
	}
	out := make([]bulkResult, len(body.Results))
	for i, raw := range body.Results {
		var item struct {
			Index      int             `json:"index"`
			Blueprint  string          `json:"blueprint"`
			Identifier string          `json:"identifier"`
			Status     string          `json:"status"`
			Error      json.RawMessage `json:"error"`
		}
		d := json.NewDecoder(bytes.NewReader(raw))
		d.DisallowUnknownFields()
		if err := d.Decode(&item); err != nil {
			t.Fatalf("bulk item %d: %v: %s", i, err, raw)
		}
		out[i] = bulkResult{Index: item.Index, Blueprint: item.Blueprint, Identifier: item.Identifier, Status: item.Status}
		if item.Index != i {
			t.Errorf("result %d has index %d", i, item.Index)
		}
		switch {
		case item.Status == "error" && item.Error == nil:
			t.Errorf("item %d failed without an error: %s", i, raw)
		case item.Status != "error" && item.Error != nil:
			t.Errorf("item %d %s with an error: %s", i, item.Status, raw)
		case item.Error != nil:
			e := decodeError(t, []byte(`{"error":`+string(item.Error)+`}`))
			out[i].Error = &e
		}
	}
	return out
}

func TestBulk(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.must(201, "PUT", "/api/v1/blueprints/team", teamBlueprint)
	e.must(201, "PUT", "/api/v1/blueprints/service", serviceBlueprint)

	// Items reference each other in reverse order: all succeed (200).
	batch := M{"entities": []M{
		{"blueprint": "service", "identifier": "a", "properties": M{"language": "go"}, "relations": M{"dependsOn": []string{"b"}, "owner": "core"}},
		{"blueprint": "service", "identifier": "b", "properties": M{"language": "go"}, "relations": M{"dependsOn": []string{"c"}}},
		{"blueprint": "service", "identifier": "c", "properties": M{"language": "python", "tier": 2}, "relations": M{"owner": "core"}},
		{"blueprint": "team", "identifier": "core", "properties": M{"slackChannel": "#core"}},
	}}
	r := e.must(200, "POST", "/api/v1/entities/bulk", batch)
	res := decodeBulk(t, r)
	want := []bulkResult{{0, "service", "a", "created", nil}, {1, "service", "b", "created", nil}, {2, "service", "c", "created", nil}, {3, "team", "core", "created", nil}}
	if !slices.EqualFunc(res, want, sameResult) {
		t.Errorf("results %+v, want %+v", res, want)
	}
	if got := e.must(200, "GET", "/api/v1/blueprints/service/entities/a", nil).obj(t); got["properties"].(M)["ownerSlack"] != "#core" || got["createdBy"] != "admin" {
		t.Errorf("bulk-written a: %v", got)
	}

	// The same batch again: 200, all unchanged, nothing rewritten.
	before := e.must(200, "GET", "/api/v1/blueprints/service/entities/c", nil).Raw
	res = decodeBulk(t, e.must(200, "POST", "/api/v1/entities/bulk", batch))
	for i, r := range res {
		if r.Status != "unchanged" {
			t.Errorf("resent item %d: %s", i, r.Status)
		}
	}
	if after := e.must(200, "GET", "/api/v1/blueprints/service/entities/c", nil).Raw; !bytes.Equal(before, after) {
		t.Errorf("unchanged entity rewritten:\n%s\n%s", before, after)
	}
	if h := history(t, e, "service", "c"); len(h) != 1 {
		t.Errorf("unchanged write recorded history: %v", h)
	}

	// Some fail: 207 with a per-item error; the others are written.
	mixed := `{"entities": [
	  {"blueprint": "service", "identifier": "d", "properties": {"language": "go"}, "relations": {"dependsOn": ["a"]}},
	  {"blueprint": "service", "identifier": "e", "properties": {"language": "go"}, "colour": "red"},
	  {"blueprint": "service", "identifier": "f", "properties": {"language": "go", "tier": "one"}},
	  {"blueprint": "nope", "identifier": "g"},
	  {"blueprint": "service", "identifier": "h", "properties": {"language": "go"}, "relations": {"owner": "ghost"}},
	  {"blueprint": "service", "identifier": "i", "properties": {"language": "go"}, "relations": {"dependsOn": ["f"]}},
	  {"identifier": "j"},
	  {"blueprint": "service", "identifier": "a", "properties": {"language": "python"}, "relations": {"dependsOn": ["b"], "owner": "core"}},
	  {"blueprint": "service", "identifier": "d", "properties": {"language": "python"}},
	  [1, 2],
	  {"blueprint": "team", "identifier": "bad id!"},
	  {"blueprint": "service", "identifier": "k", "title": 5, "properties": {"language": "go"}},
	  {"blueprint": "service", "identifier": "l", "properties": {"language": "go"}, "relations": {"dependsOn": ["k"]}}
	]}`
	r = e.must(207, "POST", "/api/v1/entities/bulk", mixed)
	res = decodeBulk(t, r)
	type expect struct {
		bp, id, status, code string
		paths                []string
	}
	wantMixed := []expect{
		{"service", "d", "created", "", nil},
		{"service", "e", "error", "malformed_request", nil},
		{"service", "f", "error", "validation_failed", []string{"/properties/tier"}},
		{"nope", "g", "error", "not_found", nil},
		{"service", "h", "error", "validation_failed", []string{"/relations/owner"}},
		{"service", "i", "error", "validation_failed", []string{"/relations/dependsOn/0"}}, // f failed
		{"", "j", "error", "validation_failed", []string{"/blueprint"}},
		{"service", "a", "updated", "", nil},
		{"service", "d", "error", "validation_failed", []string{"/identifier"}}, // duplicate of item 0
		{"", "", "error", "malformed_request", nil},
		{"team", "bad id!", "error", "validation_failed", []string{"/identifier"}},
		// k peeks fine and fails when its chunk decodes it; l depends on it.
		{"service", "k", "error", "malformed_request", nil},
		{"service", "l", "error", "validation_failed", []string{"/relations/dependsOn/0"}},
	}
	if len(res) != len(wantMixed) {
		t.Fatalf("%d results for %d items: %s", len(res), len(wantMixed), r.Raw)
	}
	for i, w := range wantMixed {
		g := res[i]
		if g.Blueprint != w.bp || g.Identifier != w.id || g.Status != w.status {
			t.Errorf("item %d = %s/%s %s, want %s/%s %s", i, g.Blueprint, g.Identifier, g.Status, w.bp, w.id, w.status)
		}
		if w.code == "" {
			continue
		}
		if g.Error == nil {
			t.Errorf("item %d: no error", i)
			continue
		}
		if g.Error.Error.Code != w.code {
			t.Errorf("item %d: code %q, want %q (%s)", i, g.Error.Error.Code, w.code, g.Error.Error.Message)
		}
		var paths []string
		for _, d := range g.Error.Error.Details {
			paths = append(paths, d.Path)
		}
		if w.paths != nil && !slices.Equal(paths, w.paths) {
			t.Errorf("item %d: paths %q, want %q", i, paths, w.paths)
		}
	}
	e.must(200, "GET", "/api/v1/blueprints/service/entities/d", nil)
	if got := e.must(200, "GET", "/api/v1/blueprints/service/entities/a", nil).obj(t)["properties"].(M)["language"]; got != "python" {
		t.Errorf("a not updated: %v", got)
	}
	for _, id := range []string{"e", "f", "h", "i", "j", "k", "l"} {
		e.must(404, "GET", "/api/v1/blueprints/service/entities/"+id, nil)
	}

	// 10,001 entities: 422 and nothing written; 10,000 are accepted.
	big := func(n int) []byte {
		var b bytes.Buffer
		b.WriteString(`{"entities": [`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"blueprint": "team", "identifier": "t%05d"}`, i)
		}
		b.WriteString(`]}`)
		return b.Bytes()
	}
	checkError(t, e.do("POST", "/api/v1/entities/bulk", big(catalog.MaxBatch+1)), 422, "validation_failed", []string{"/entities"})
	if p := decodePage(t, e.must(200, "GET", "/api/v1/blueprints/team/entities?limit=1", nil)); p.Total != 1 {
		t.Errorf("rejected batch wrote %d teams", p.Total-1)
	}
	if testing.Short() {
		return
	}
	res = decodeBulk(t, e.must(200, "POST", "/api/v1/entities/bulk", big(catalog.MaxBatch)))
	if len(res) != catalog.MaxBatch || res[catalog.MaxBatch-1].Status != "created" || res[catalog.MaxBatch-1].Identifier != "t09999" {
		t.Errorf("10,000-entity batch: %d results, last %+v", len(res), res[len(res)-1])
	}
	if p := decodePage(t, e.must(200, "GET", "/api/v1/blueprints/team/entities?limit=1", nil)); p.Total != catalog.MaxBatch+1 {
		t.Errorf("after 10,000: total %d", p.Total)
	}
}

func sameResult(a, b bulkResult) bool {
	return a.Index == b.Index && a.Blueprint == b.Blueprint && a.Identifier == b.Identifier && a.Status == b.Status
}

// ---------------------------------------------------------------------------
// Search

func TestSearch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seed(e)
	e.must(201, "PUT", "/api/v1/blueprints/service/entities/billing", M{"team": []string{"payments"}, "properties": M{"language": "go", "tier": 3}, "relations": M{"owner": "payments"}})
	e.must(201, "PUT", "/api/v1/blueprints/service/entities/ledger", M{"properties": M{"language": "go", "tier": 3}, "relations": M{"owner": "payments"}})
	e.must(201, "PUT", "/api/v1/blueprints/service/entities/search", M{"properties": M{"language": "go", "tier": 1}, "relations": M{"owner": "platform"}})

	// The DESIGN §4 example: go services owned by payments that are tier ≤ 2
	// or on the payments team.
	example := `{"query": {"combinator": "and", "rules": [
   {"property": "$blueprint", "operator": "=", "value": "service"},
   {"property": "language", "operator": "in", "value": ["go", "rust"]},
   {"combinator": "or", "rules": [{"property": "tier", "operator": "<=", "value": 2},
                                   {"property": "$team", "operator": "contains", "value": "payments"}]},
   {"operator": "relatedTo", "blueprint": "team", "identifier": "payments", "direction": "upstream"}]},
 "limit": 100, "cursor": null, "sort": [{"property": "$updatedAt", "order": "desc"}]}`
	p := decodePage(t, e.must(200, "POST", "/api/v1/entities/search", example))
	if got := identifiers(p); !slices.Equal(got, []string{"billing", "checkout"}) || p.Total != 2 || p.Next != nil {
		t.Errorf("DESIGN example: %v total %d next %v", got, p.Total, p.Next)
	}
	if len(p.Entities) > 0 {
		if en := p.Entities[1]; en["properties"].(M)["url"] != "https://svc/checkout" || en["properties"].(M)["ownerSlack"] != "#payments" || en["blueprint"] != "service" {
			t.Errorf("search result lacks computed/meta fields: %v", en)
		}
	}

	cases := []struct {
		name  string
		query string
		want  []string // sorted by identifier
	}{
		{"everything", `null`, []string{"billing", "cart", "checkout", "checkout-prod", "ledger", "payments", "platform", "pricing", "search"}},
		{"downstream of checkout", `{"combinator": "and", "rules": [{"operator": "relatedTo", "blueprint": "service", "identifier": "checkout", "direction": "downstream"}]}`, []string{"cart", "payments", "pricing"}},
		{"downstream through one relation", `{"combinator": "and", "rules": [{"operator": "relatedTo", "blueprint": "service", "identifier": "checkout", "direction": "downstream", "relation": "dependsOn"}]}`, []string{"cart", "pricing"}},
		{"upstream depth 2", `{"combinator": "and", "rules": [{"operator": "relatedTo", "blueprint": "service", "identifier": "cart", "direction": "upstream", "depth": 2}]}`, []string{"checkout", "checkout-prod"}},
		{"not in", `{"combinator": "and", "rules": [{"property": "$blueprint", "operator": "=", "value": "service"}, {"property": "language", "operator": "notIn", "value": ["go"]}]}`, []string{"pricing"}},
		{"between", `{"combinator": "and", "rules": [{"property": "tier", "operator": "between", "value": [2, 3]}]}`, []string{"billing", "cart", "ledger"}},
		{"beginsWith identifier", `{"combinator": "and", "rules": [{"property": "$identifier", "operator": "beginsWith", "value": "check"}]}`, []string{"checkout", "checkout-prod"}},
		{"isEmpty team", `{"combinator": "and", "rules": [{"property": "$blueprint", "operator": "=", "value": "service"}, {"property": "$team", "operator": "isEmpty"}]}`, []string{"cart", "ledger", "pricing", "search"}},
		{"computed property", `{"combinator": "and", "rules": [{"property": "ownerSlack", "operator": "=", "value": "#platform"}]}`, []string{"cart", "search"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"query": ` + tc.query + `, "sort": [{"property": "$identifier"}]}`
			p := decodePage(t, e.must(200, "POST", "/api/v1/entities/search", body))
			if got := identifiers(p); !slices.Equal(got, tc.want) || p.Total != len(tc.want) {
				t.Errorf("got %v (total %d), want %v", got, p.Total, tc.want)
			}
		})
	}

	// Paging with next/total; next is null on the last page.
	all := []string{"billing", "cart", "checkout", "ledger", "pricing", "search"}
	for _, limit := range []int{1, 2, 3, 4, 6} {
		var seen []string
		var cursor *string
		for pages := 0; ; pages++ {
			if pages > len(all) {
				t.Fatal("search paging does not end")
			}
			body := M{"query": M{"combinator": "and", "rules": []M{{"property": "$blueprint", "operator": "=", "value": "service"}}},
				"limit": limit, "cursor": cursor, "sort": []M{{"property": "$identifier", "order": "asc"}}}
			p := decodePage(t, e.must(200, "POST", "/api/v1/entities/search", body))
			if p.Total != len(all) || len(p.Entities) == 0 || len(p.Entities) > limit {
				t.Fatalf("limit %d page %d: %d entities, total %d", limit, pages, len(p.Entities), p.Total)
			}
			seen = append(seen, identifiers(p)...)
			if p.Next == nil {
				break
			}
			cursor = p.Next
		}
		if !slices.Equal(seen, all) {
			t.Errorf("limit %d: paged through %v", limit, seen)
		}
	}
	// Descending sort; no match → empty list, not null.
	p = decodePage(t, e.must(200, "POST", "/api/v1/entities/search", `{"query": {"combinator": "and", "rules": [{"property": "$blueprint", "operator": "=", "value": "team"}]}, "sort": [{"property": "$identifier", "order": "desc"}]}`))
	if got := identifiers(p); !slices.Equal(got, []string{"platform", "payments"}) {
		t.Errorf("desc: %v", got)
	}
	r := e.must(200, "POST", "/api/v1/entities/search", `{"query": {"combinator": "and", "rules": [{"property": "$identifier", "operator": "=", "value": "nobody"}]}}`)
	if p := decodePage(t, r); p.Entities == nil || p.Total != 0 || p.Next != nil {
		t.Errorf("no match: %s", r.Raw)
	}
}

func identifiers(p page) []string {
	var out []string
	for _, e := range p.Entities {
		out = append(out, e["identifier"].(string))
	}
	return out
}

// ---------------------------------------------------------------------------
// Related

func TestRelated(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seed(e)
	type hop struct {
		Ref      catalog.Ref `json:"ref"`
		Relation string      `json:"relation"`
		Depth    int         `json:"depth"`
		Via      catalog.Ref `json:"via"`
	}
	related := func(path string) map[string][]hop {
		t.Helper()
		var out map[string][]hop
		r := e.must(200, "GET", path, nil)
		if err := json.Unmarshal(r.Raw, &out); err != nil {
			t.Fatalf("%s: %v: %s", path, err, r.Raw)
		}
		return out
	}
	show := func(hs []hop) []string {
		var out []string
		for _, h := range hs {
			out = append(out, fmt.Sprintf("%s/%s %s %d via %s", h.Ref.Blueprint, h.Ref.Identifier, h.Relation, h.Depth, h.Via.Identifier))
		}
		sort.Strings(out)
		return out
	}

	got := related("/api/v1/blueprints/service/entities/checkout/related")
	if want := []string{"service/cart dependsOn 1 via checkout", "service/pricing dependsOn 1 via checkout", "team/payments owner 1 via checkout"}; !slices.Equal(show(got["downstream"]), want) {
		t.Errorf("downstream %q, want %q", show(got["downstream"]), want)
	}
	if want := []string{"deployment/checkout-prod service 1 via checkout"}; !slices.Equal(show(got["upstream"]), want) {
		t.Errorf("upstream %q, want %q", show(got["upstream"]), want)
	}

	got = related("/api/v1/blueprints/team/entities/payments/related?direction=upstream&depth=2")
	if _, ok := got["downstream"]; ok {
		t.Errorf("direction=upstream returned downstream too")
	}
	if want := []string{"deployment/checkout-prod service 2 via checkout", "service/checkout owner 1 via payments", "service/pricing owner 1 via payments"}; !slices.Equal(show(got["upstream"]), want) {
		t.Errorf("upstream depth 2 %q, want %q", show(got["upstream"]), want)
	}

	got = related("/api/v1/blueprints/team/entities/payments/related?direction=downstream")
	if hs, ok := got["downstream"]; !ok || hs == nil || len(hs) != 0 {
		t.Errorf("payments downstream = %v (want an empty list)", got)
	}
	got = related("/api/v1/blueprints/deployment/entities/checkout-prod/related?direction=downstream&depth=3")
	if want := []string{"service/cart dependsOn 2 via checkout", "service/checkout service 1 via checkout-prod", "service/pricing dependsOn 2 via checkout", "team/payments owner 2 via checkout", "team/platform owner 3 via cart"}; !slices.Equal(show(got["downstream"]), want) {
		t.Errorf("downstream depth 3 %q, want %q", show(got["downstream"]), want)
	}
	checkError(t, e.do("GET", "/api/v1/blueprints/service/entities/checkout/related?depth=0", nil), 422, "validation_failed", []string{"/depth"})
}

// ---------------------------------------------------------------------------
// Events

// sseEvent is one SSE frame with its decoded data.
type sseEvent struct {
	FrameID, FrameEvent string
	ID                  string          `json:"id"`
	Type                string          `json:"type"`
	Blueprint           string          `json:"blueprint"`
	Identifier          string          `json:"identifier"`
	Before              json.RawMessage `json:"before"`
	After               json.RawMessage `json:"after"`
	Actor               string          `json:"actor"`
	At                  time.Time       `json:"at"`
}

// stream is an open GET /api/v1/events.
type stream struct {
	frames chan sseEvent
	cancel context.CancelFunc
	done   chan struct{}
}

// openEvents opens the SSE stream (after: ?after, lastID: Last-Event-ID).
func openEvents(t *testing.T, e *env, after, lastID string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	path := e.srv.URL + "/api/v1/events"
	if after != "" {
		path += "?after=" + url.QueryEscape(after)
	}
	req, err := http.NewRequestWithContext(ctx, "GET", path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		cancel()
		t.Fatalf("events: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	s := &stream{frames: make(chan sseEvent, 1000), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer close(s.frames)
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		var id, event string
		var data []string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if data == nil {
					id, event = "", ""
					continue // a comment-only block (keep-alive)
				}
				var ev sseEvent
				if err := json.Unmarshal([]byte(strings.Join(data, "\n")), &ev); err != nil {
					ev.Type = "undecodable: " + err.Error()
				}
				ev.FrameID, ev.FrameEvent = id, event
				s.frames <- ev
				id, event, data = "", "", nil
			case strings.HasPrefix(line, ":"):
			case strings.HasPrefix(line, "id: "):
				id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data = append(data, strings.TrimPrefix(line, "data: "))
			}
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *stream) close() {
	s.cancel()
	<-s.done
}

// next returns the next frame, failing after a timeout.
func (s *stream) next(t *testing.T) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-s.frames:
		if !ok {
			t.Fatal("event stream ended")
		}
		return ev
	case <-time.After(30 * time.Second):
		t.Fatal("no event within 30s")
	}
	return sseEvent{}
}

// firstNew creates team entities prefix-0, prefix-1… until s delivers an
// event, and returns the first one. A stream opened at "$" takes its
// position only after its headers went out: a single write could come
// before it, however long the test waited.
func (s *stream) firstNew(t *testing.T, e *env, prefix string) sseEvent {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		e.must(201, "PUT", fmt.Sprintf("/api/v1/blueprints/team/entities/%s-%d", prefix, i), M{})
		select {
		case ev, ok := <-s.frames:
			if !ok {
				t.Fatal("event stream ended")
			}
			return ev
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no event within 30s")
		}
	}
}

// quiet asserts no frame arrives for a moment.
func (s *stream) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case ev := <-s.frames:
		t.Errorf("unexpected event %s %s/%s", ev.Type, ev.Blueprint, ev.Identifier)
	case <-time.After(d):
	}
}

// readEvents reads the stream from after until done says enough (at most n).
func readEvents(t *testing.T, e *env, after, lastID string, n int, done func([]sseEvent) bool) []sseEvent {
	t.Helper()
	s := openEvents(t, e, after, lastID)
	defer s.close()
	var out []sseEvent
	for len(out) < n && !done(out) {
		out = append(out, s.next(t))
	}
	return out
}

func history(t *testing.T, e *env, bp, id string) []string {
	t.Helper()
	var h struct {
		Events []sseEvent `json:"events"`
	}
	if err := json.Unmarshal(e.must(200, "GET", "/api/v1/blueprints/"+bp+"/entities/"+id+"/history", nil).Raw, &h); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range h.Events {
		out = append(out, ev.Type)
	}
	return out
}

func TestEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.must(201, "PUT", "/api/v1/blueprints/team", teamBlueprint)
	e.must(201, "PUT", "/api/v1/blueprints/team/entities/payments", M{"properties": M{"slackChannel": "#payments"}})
	e.must(200, "PATCH", "/api/v1/blueprints/team/entities/payments", M{"properties": M{"slackChannel": "#pay"}})
	e.must(201, "PUT", "/api/v1/blueprints/team/entities/platform", M{})
	e.must(200, "PUT", "/api/v1/blueprints/team/entities/platform", M{}) // unchanged: no event
	e.must(200, "DELETE", "/api/v1/blueprints/team/entities/platform", nil)

	want := []struct{ typ, bp, id string }{
		{"blueprint.created", "team", ""},
		{"entity.created", "team", "payments"},
		{"entity.updated", "team", "payments"},
		{"entity.created", "team", "platform"},
		{"entity.deleted", "team", "platform"},
	}
	s := openEvents(t, e, "0", "")
	var got []sseEvent
	for range want {
		got = append(got, s.next(t))
	}
	prev := ""
	for i, w := range want {
		ev := got[i]
		if ev.Type != w.typ || ev.Blueprint != w.bp || ev.Identifier != w.id {
			t.Errorf("event %d = %s %s/%s, want %s %s/%s", i, ev.Type, ev.Blueprint, ev.Identifier, w.typ, w.bp, w.id)
		}
		if ev.FrameID == "" || ev.FrameID != ev.ID || ev.FrameEvent != ev.Type {
			t.Errorf("event %d: frame id %q event %q, data id %q type %q", i, ev.FrameID, ev.FrameEvent, ev.ID, ev.Type)
		}
		if !streamIDLess(prev, ev.ID) {
			t.Errorf("event ids out of order: %q then %q", prev, ev.ID)
		}
		prev = ev.ID
		if ev.Actor != "admin" || time.Since(ev.At) > time.Minute {
			t.Errorf("event %d: actor %q at %v", i, ev.Actor, ev.At)
		}
	}
	if string(got[1].Before) != "null" || !bytes.Contains(got[1].After, []byte(`"#payments"`)) {
		t.Errorf("created: before %s after %s", got[1].Before, got[1].After)
	}
	if !bytes.Contains(got[2].Before, []byte(`"#payments"`)) || !bytes.Contains(got[2].After, []byte(`"#pay"`)) {
		t.Errorf("updated: before %s after %s", got[2].Before, got[2].After)
	}
	if !bytes.Contains(got[4].Before, []byte(`"platform"`)) || string(got[4].After) != "null" {
		t.Errorf("deleted: before %s after %s", got[4].Before, got[4].After)
	}

	// Live: a write while the stream is open arrives at once; a rejected one does not.
	s.quiet(t, 200*time.Millisecond)
	checkError(t, e.do("PUT", "/api/v1/blueprints/team/entities/bad", M{"properties": M{"slackChannel": 1}}), 422, "validation_failed", nil)
	e.must(201, "PUT", "/api/v1/blueprints/team/entities/infra", M{})
	if ev := s.next(t); ev.Type != "entity.created" || ev.Identifier != "infra" {
		t.Errorf("live event %s %s", ev.Type, ev.Identifier)
	}
	s.quiet(t, 200*time.Millisecond)

	// Resuming after an id (query or Last-Event-ID) yields only later events.
	for _, how := range []struct{ after, lastID string }{{got[1].ID, ""}, {"", got[1].ID}} {
		r := readEvents(t, e, how.after, how.lastID, 10, func(evs []sseEvent) bool {
			return len(evs) > 0 && evs[len(evs)-1].Identifier == "infra"
		})
		var types []string
		for _, ev := range r {
			types = append(types, ev.Type+" "+ev.Identifier)
		}
		if want := []string{"entity.updated payments", "entity.created platform", "entity.deleted platform", "entity.created infra"}; !slices.Equal(types, want) {
			t.Errorf("resume %+v: %q, want %q", how, types, want)
		}
	}
	// Without a position the stream starts at the oldest event.
	if r := readEvents(t, e, "", "", 1, func([]sseEvent) bool { return false }); r[0].ID != got[0].ID {
		t.Errorf("default start %s, want %s", r[0].ID, got[0].ID)
	}
	// "$": only events from now on.
	live := openEvents(t, e, "$", "")
	if ev := live.firstNew(t, e, "ops"); !strings.HasPrefix(ev.Identifier, "ops-") {
		t.Errorf(`after=$ got %s %s first`, ev.Type, ev.Identifier)
	}

	// History: oldest first, created → updated.
	if h := history(t, e, "team", "payments"); !slices.Equal(h, []string{"entity.created", "entity.updated"}) {
		t.Errorf("history %v", h)
	}
	checkError(t, e.do("GET", "/api/v1/blueprints/team/entities/platform/history", nil), 404, "not_found", nil)
}

// Open event streams must not hold Redis connections: with more streams
// than the pool has connections, other requests still answer promptly, and
// streams whose clients went away are released at once.
func TestEventStreamsDoNotStarveThePool(t *testing.T) {
	t.Parallel()
	// A stream holding a connection would starve the pool: the requests
	// below would fail after PoolTimeout, whatever the machine's load.
	e := newEnvWith(t, &redis.Options{PoolSize: 3, PoolTimeout: 5 * time.Second})
	e.must(201, "PUT", "/api/v1/blueprints/team", teamBlueprint)
	var streams []*stream
	for range 8 {
		streams = append(streams, openEvents(t, e, "0", ""))
	}
	for _, s := range streams {
		if ev := s.next(t); ev.Type != "blueprint.created" {
			t.Fatalf("first event %s", ev.Type)
		}
	}
	e.must(201, "PUT", "/api/v1/blueprints/team/entities/a", M{})
	e.must(200, "GET", "/api/v1/blueprints/team/entities/a", nil)
	for _, s := range streams {
		if ev := s.next(t); ev.Identifier != "a" {
			t.Errorf("stream got %s %s", ev.Type, ev.Identifier)
		}
	}
	start := time.Now()
	for _, s := range streams {
		s.close()
	}
	e.srv.Close() // waits for every handler
	// A handler that noticed only when its blocking read ends would take
	// up to eventPoll (10 s).
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("closing the streams took %v", d)
	}
}

// streamIDLess compares Redis stream ids ("ms-seq"); "" is the smallest.
func streamIDLess(a, b string) bool {
	if a == "" {
		return b != ""
	}
	var am, as, bm, bs uint64
	fmt.Sscanf(a, "%d-%d", &am, &as)
	fmt.Sscanf(b, "%d-%d", &bm, &bs)
	return am < bm || am == bm && as < bs
}

// ---------------------------------------------------------------------------
// helpers

func parseTime(t *testing.T, v any) time.Time {
	t.Helper()
	s, _ := v.(string)
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("not an RFC 3339 time: %v", v)
	}
	return ts
}

func jsonEqual(a, b any) bool {
	ra, _ := json.Marshal(a)
	rb, _ := json.Marshal(b)
	var x, y any
	_ = json.Unmarshal(ra, &x)
	_ = json.Unmarshal(rb, &y)
	rx, _ := json.Marshal(x)
	ry, _ := json.Marshal(y)
	return bytes.Equal(rx, ry)
}

// TestConcurrentBulkWrites sends twice as many bulk writes at once as run
// at once (api.MaxConcurrentBulk): the others wait their turn, all succeed.
func TestConcurrentBulkWrites(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.must(201, "PUT", "/api/v1/blueprints/team", teamBlueprint)
	var wg sync.WaitGroup
	codes := make([]int, 2*api.MaxConcurrentBulk)
	for n := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var items []M
			for i := range 300 {
				items = append(items, M{"blueprint": "team", "identifier": fmt.Sprintf("t%d-%d", n, i)})
			}
			codes[n] = e.do("POST", "/api/v1/entities/bulk", M{"entities": items}).Status
		}()
	}
	wg.Wait()
	for n, code := range codes {
		if code != 200 {
			t.Errorf("bulk %d: %d", n, code)
		}
	}
	if p := decodePage(t, e.must(200, "GET", "/api/v1/blueprints/team/entities?limit=1", nil)); p.Total != 300*len(codes) {
		t.Errorf("%d teams written, want %d", p.Total, 300*len(codes))
	}
}
