package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/portico-dev/portico/core/access"
	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/core/api"
	"github.com/portico-dev/portico/core/automations"
	"github.com/portico-dev/portico/core/definitions"
	"github.com/portico-dev/portico/core/definitions/redisdefinitions"
	"github.com/portico-dev/portico/core/initiatives"
	"github.com/portico-dev/portico/core/initiatives/redisinitiatives"
)

// Route registration only needs non-nil registry and integrations; no
// handler is called, so the embedded nil interfaces are never used.
type (
	routesOnlyPlugins      struct{ api.Plugins }
	routesOnlyIntegrations struct{ api.Integrations }
)

// fullEngine builds the API with every optional part configured, so that
// every route is mounted.
func fullEngine(t *testing.T) *gin.Engine {
	t.Helper()
	cfg, rdb := actionsConfig(t, &fakeRunner{runs: map[string]*actions.Run{}})
	cfg.Initiatives = initiatives.NewService(redisinitiatives.New(rdb, redisinitiatives.Options{}), cfg.Catalog, initiatives.Options{})
	cfg.Plugins, cfg.Integrations = routesOnlyPlugins{}, routesOnlyIntegrations{}
	cfg.Automations = automations.NewService(nil, cfg.Catalog, cfg.Actions, automations.Options{})
	cfg.Definitions = definitions.NewService(redisdefinitions.New(rdb, redisdefinitions.Options{}), nil)
	h := api.New(cfg)
	engine, ok := h.(*gin.Engine)
	if !ok {
		t.Fatalf("api.New returned %T, not *gin.Engine", h)
	}
	return engine
}

// openAPIMethods are the operation keys of an OpenAPI path item.
var openAPIMethods = map[string]bool{
	"get": true, "put": true, "post": true, "delete": true,
	"options": true, "head": true, "patch": true, "trace": true,
}

// ginParam matches a gin path parameter (:name or *name).
var ginParam = regexp.MustCompile(`[:*]([A-Za-z0-9_]+)`)

// TestOpenAPIDocumentsEveryRoute checks openapi.json against the routes
// the API mounts, both ways, and that every $ref resolves.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	engine := fullEngine(t)

	rec := httptest.NewRecorder()
	engine.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/openapi.json", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /api/v1/openapi.json: %d %.300s", rec.Code, rec.Body.Bytes())
	}
	var doc map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatalf("openapi.json does not parse: %v", err)
	}
	paths, _ := doc["paths"].(map[string]any)
	if len(paths) == 0 {
		t.Fatal("openapi.json has no paths")
	}

	documented := map[string]bool{} // "METHOD /path"
	for path, item := range paths {
		ops, ok := item.(map[string]any)
		if !ok {
			t.Errorf("path %s is not an object", path)
			continue
		}
		for key := range ops {
			if openAPIMethods[key] {
				documented[strings.ToUpper(key)+" "+path] = true
			}
		}
	}

	mounted := map[string]bool{}
	for _, r := range engine.Routes() {
		if r.Method == http.MethodHead || r.Method == http.MethodOptions {
			continue
		}
		path := ginParam.ReplaceAllString(r.Path, "{$1}")
		key := r.Method + " " + path
		if key == "GET /api/v1/openapi.json" && !documented[key] {
			continue // the document need not describe itself
		}
		mounted[key] = true
	}
	if len(mounted) < 40 {
		t.Fatalf("only %d routes mounted: is every optional part configured?", len(mounted))
	}

	var undocumented, unrouted []string
	for k := range mounted {
		if !documented[k] {
			undocumented = append(undocumented, k)
		}
	}
	for k := range documented {
		if !mounted[k] {
			unrouted = append(unrouted, k)
		}
	}
	sort.Strings(undocumented)
	sort.Strings(unrouted)
	for _, k := range undocumented {
		t.Errorf("route %s is not in openapi.json", k)
	}
	for _, k := range unrouted {
		t.Errorf("openapi.json documents %s, which no route serves", k)
	}

	refs := map[string]bool{}
	collectRefs(doc, refs)
	if len(refs) == 0 {
		t.Error("openapi.json has no $ref at all")
	}
	for ref := range refs {
		if !strings.HasPrefix(ref, "#/components/") {
			t.Errorf("$ref %q does not point into #/components", ref)
			continue
		}
		if resolvePointer(doc, strings.TrimPrefix(ref, "#")) == nil {
			t.Errorf("$ref %q does not resolve", ref)
		}
	}
}

// TestOpenAPISchemasMatchGoTypes checks that the action and run schemas
// name exactly the JSON fields of the Go types they describe.
func TestOpenAPISchemasMatchGoTypes(t *testing.T) {
	rec := httptest.NewRecorder()
	fullEngine(t).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/openapi.json", nil))
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]any `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatalf("openapi.json does not parse: %v", err)
	}
	for name, v := range map[string]any{
		"Action":             actions.Action{},
		"Invocation":         actions.Invocation{},
		"Approval":           actions.Approval{},
		"Escalation":         actions.Escalation{},
		"Retry":              actions.Retry{},
		"Workflow":           actions.Workflow{},
		"Step":               actions.Step{},
		"EntitySelector":     actions.EntitySelector{},
		"Run":                actions.Run{},
		"StepRun":            actions.StepRun{},
		"LogLine":            actions.LogLine{},
		"ApprovalRecord":     actions.ApprovalRecord{},
		"PendingApproval":    actions.PendingApproval{},
		"Affected":           actions.Affected{},
		"Decision":           actions.DecideRequest{},
		"TriggerRequest":     actions.TriggerRequest{},
		"Policy":             access.Policy{},
		"Automation":         automations.Automation{},
		"AutomationDelivery": automations.Delivery{},
	} {
		schema, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("openapi.json has no schema %s", name)
			continue
		}
		var documented []string
		for p := range schema.Properties {
			documented = append(documented, p)
		}
		sort.Strings(documented)
		fields := jsonFields(reflect.TypeOf(v))
		sort.Strings(fields)
		if !slices.Equal(documented, fields) {
			t.Errorf("schema %s has properties %v, %T has JSON fields %v", name, documented, v, fields)
		}
	}
}

// jsonFields lists the JSON names of a struct's exported fields,
// flattening embedded structs as encoding/json does.
func jsonFields(typ reflect.Type) []string {
	var out []string
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	return out
}

// collectRefs adds every "$ref" string found in v to refs.
func collectRefs(v any, refs map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, child := range x {
			if s, ok := child.(string); ok && k == "$ref" {
				refs[s] = true
				continue
			}
			collectRefs(child, refs)
		}
	case []any:
		for _, child := range x {
			collectRefs(child, refs)
		}
	}
}

// resolvePointer returns the value a JSON pointer ("/a/b") names in doc,
// or nil.
func resolvePointer(doc any, pointer string) any {
	cur := doc
	for _, tok := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		if cur, ok = obj[tok]; !ok {
			return nil
		}
	}
	return cur
}

// TestOpenAPIIsClientReady checks what client generators and linters
// (Redocly's recommended rules) need of every operation: a unique
// operationId, a summary, tags, and its error responses — every /api/v1
// operation can be rate limited (429), every authenticated one refused
// (401, 403), every one with a body malformed (400) or too slow (408).
func TestOpenAPIIsClientReady(t *testing.T) {
	rec := httptest.NewRecorder()
	fullEngine(t).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/openapi.json", nil))
	var doc struct {
		Servers []struct{ URL string }                `json:"servers"`
		Tags    []struct{ Name string }               `json:"tags"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	type operation struct {
		OperationID string          `json:"operationId"`
		Summary     string          `json:"summary"`
		Tags        []string        `json:"tags"`
		Security    *[]any          `json:"security"`
		RequestBody json.RawMessage `json:"requestBody"`
		Responses   map[string]any  `json:"responses"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Servers) == 0 || doc.Servers[0].URL == "" {
		t.Error("servers is not set")
	}
	tags := map[string]bool{}
	for _, tg := range doc.Tags {
		tags[tg.Name] = true
	}
	ids := map[string]string{}
	for path, item := range doc.Paths {
		for method, raw := range item {
			if !openAPIMethods[method] {
				continue
			}
			where := strings.ToUpper(method) + " " + path
			var op operation
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			if op.OperationID == "" {
				t.Errorf("%s: no operationId", where)
			} else if other, dup := ids[op.OperationID]; dup {
				t.Errorf("%s: operationId %q also names %s", where, op.OperationID, other)
			}
			ids[op.OperationID] = where
			if op.Summary == "" {
				t.Errorf("%s: no summary", where)
			}
			if len(op.Tags) == 0 {
				t.Errorf("%s: no tags", where)
			}
			for _, tg := range op.Tags {
				if !tags[tg] {
					t.Errorf("%s: tag %q is not declared", where, tg)
				}
			}
			want := []string{}
			if strings.HasPrefix(path, "/api/v1/") {
				want = append(want, "429")
				if op.Security == nil {
					want = append(want, "401", "403")
				}
				if len(op.RequestBody) > 0 {
					want = append(want, "400", "408", "413")
				}
			}
			for _, code := range want {
				if _, ok := op.Responses[code]; !ok {
					t.Errorf("%s: response %s is not documented", where, code)
				}
			}
		}
	}
}
