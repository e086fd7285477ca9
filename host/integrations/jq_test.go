package integrations_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portico-dev/portico/host/integrations"
)

// jqBombPkg is a plugin whose default mapping recurses for ever.
const jqBombPkg = "./host/integrations/testdata/jqbomb"

// TestMappingOverBoundFailsResync runs mappings that, unbounded, pin a CPU
// or exhaust memory (a plugin's default mapping and admin overrides): each
// resync fails with the expression and the bound named, writes and deletes
// nothing, and the portal keeps serving, a normal resync included.
func TestMappingOverBoundFailsResync(t *testing.T) {
	p := newPortal(t, nil, integrations.Options{})
	api := newStandIn(t, 30)
	if r := p.publish(jqBombPkg); r.status != http.StatusCreated {
		t.Fatalf("publish jqbomb: %d %s", r.status, r.body)
	}
	p.publish(examplePkg)

	override := func(title string, props map[string]string) map[string]any {
		return map[string]any{"mapping": map[string]any{"resources": []map[string]any{{
			"kind": "item", "entity": map[string]any{
				"identifier": ".id", "title": title, "blueprint": `"exampleItem"`, "properties": props},
		}}}}
	}
	// Loops stop at the step or (on a loaded machine) the time bound.
	cases := []struct {
		name, plugin string
		extra        map[string]any
		expr, limit  string
	}{
		{"plugin default mapping recurses", "jqbomb", nil, `def f: f; f`, "limit exceeded"},
		{"override builds a huge string", "example", override(`"x" * 1e9`, nil), `"x" * 1e9`, "value size limit exceeded"},
		{"override outputs a huge value", "example",
			override(".name", map[string]string{"name": `("x" * 1000) as $s | [range(2000) | $s] | .[0]`, "status": `("x" * 1000) as $s | [range(2000) | $s]`}),
			`("x" * 1000) as $s | [range(2000) | $s]`, "output size limit exceeded"},
		{"override collects for ever", "example", override(`[repeat(.name)] | length`, nil), `[repeat(.name)] | length`, "limit exceeded"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := strings.ReplaceAll(c.name, " ", "-")
			p.install(id, c.plugin, api, c.extra)
			start := time.Now()
			s := p.resync(id)
			if s.Status != integrations.SyncFailed || s.Upserts != 0 || s.Deletes != 0 || len(s.Errors) == 0 {
				t.Fatalf("resync: %+v", s)
			}
			msg := s.Errors[0].Message
			if !strings.Contains(msg, fmt.Sprintf("jq %q", c.expr)) || !strings.Contains(msg, c.limit) {
				t.Fatalf("error %q does not name %s and %q", msg, c.expr, c.limit)
			}
			if took := time.Since(start); took > 20*time.Second {
				t.Errorf("failing resync took %v", took)
			}
			if n := len(p.search(id)); n != 0 {
				t.Fatalf("%d entities written by a failing mapping", n)
			}
		})
	}

	// The portal still serves: reads, and a normal resync.
	p.must(http.StatusOK, "GET", "/api/v1/blueprints/exampleItem", nil)
	p.install("normal", "example", api, nil)
	if s := p.resync("normal"); s.Status != integrations.SyncSucceeded || s.Upserts != 30 {
		t.Fatalf("normal resync after the attacks: %+v", s)
	}
}

// TestDeliveryStopsAtFirstMappingOverBound has a plugin action return many
// items for a mapping that loops: the first item that exceeds the bound
// stops the delivery (each further item could cost the bound again), and
// nothing of it is written.
func TestDeliveryStopsAtFirstMappingOverBound(t *testing.T) {
	p := newPortal(t, nil, integrations.Options{})
	p.publish(trespasserPkg)
	p.installTrespasser("loops", map[string]any{}, map[string]any{"mapping": map[string]any{"resources": []map[string]any{{
		"kind": "own", "entity": map[string]any{"identifier": ".id", "title": `def f: f; f`, "blueprint": `"trespass"`},
	}}}})
	var upserts []map[string]any
	for i := range 20 {
		upserts = append(upserts, map[string]any{"kind": "own", "item": map[string]any{"id": fmt.Sprintf("own-%d", i)}})
	}
	var res integrations.ActResult
	p.must(http.StatusOK, "POST", "/api/v1/integrations/loops/actions/apply", map[string]any{"inputs": map[string]any{"upserts": upserts}}).json(t, &res)
	if len(res.Errors) != 2 || !strings.Contains(res.Errors[0].Message, `jq "def f: f; f"`) ||
		!strings.Contains(res.Errors[1].Message, "remaining items were not applied") || len(res.Upserted) != 0 {
		t.Fatalf("act result: %+v", res)
	}
	if n := len(p.search("loops")); n != 0 {
		t.Fatalf("%d entities written by a delivery whose mapping exceeded its bound", n)
	}
}
