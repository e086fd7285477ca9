package api_test

import (
	"strings"
	"testing"
	"time"
)

// TestCalculationPropertyBounds puts blueprints whose calculation property
// never ends: one that does so for every entity is refused (422, nothing
// stored); one that does so for some entities gives null for those within
// its bound, and the portal keeps serving.
func TestCalculationPropertyBounds(t *testing.T) {
	e := newEnv(t)
	bp := func(jq string) M {
		return M{"identifier": "svc", "schema": M{"properties": M{"n": M{"type": "integer"}}},
			"calculationProperties": M{"loop": M{"jq": jq}, "ok": M{"jq": `.identifier + "!"`}}}
	}
	for _, jq := range []string{`def f: f; f`, `[repeat(1)]`, `"x" * 1e9`, `[range(64)] | reduce .[] as $i ([1]; [., .]) | tojson`} {
		r := e.do("PUT", "/api/v1/blueprints/svc", bp(jq))
		checkError(t, r, 422, "validation_failed", []string{"/calculationProperties/loop/jq"})
		if !strings.Contains(string(r.Raw), "limit exceeded") {
			t.Fatalf("%s: %s", jq, r.Raw)
		}
		e.must(404, "GET", "/api/v1/blueprints/svc", nil)
	}

	// Loops only for entities with n: accepted, bounded on read.
	e.must(201, "PUT", "/api/v1/blueprints/svc", bp(`if .properties.n then last(range(1e12)) else 0 end`))
	e.must(201, "POST", "/api/v1/blueprints/svc/entities", M{"identifier": "bomb", "properties": M{"n": 1}})
	e.must(201, "POST", "/api/v1/blueprints/svc/entities", M{"identifier": "calm"})
	start := time.Now()
	got := e.must(200, "GET", "/api/v1/blueprints/svc/entities/bomb", nil).obj(t)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("read took %v", took)
	}
	props := got["properties"].(map[string]any)
	if v, ok := props["loop"]; !ok || v != nil || props["ok"] != "bomb!" {
		t.Fatalf("bomb read: %v", props)
	}
	props = e.must(200, "GET", "/api/v1/blueprints/svc/entities/calm", nil).obj(t)["properties"].(map[string]any)
	if props["loop"] != 0.0 || props["ok"] != "calm!" {
		t.Fatalf("calm read: %v", props)
	}
}
