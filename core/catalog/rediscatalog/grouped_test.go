package rediscatalog

import (
	"encoding/json"
	"testing"

	"github.com/portico-dev/portico/core/catalog"
)

// TestTeamlessFollowWrites: the entities without a team, which counts and
// numbers grouped by $team read from their own set, follow every write:
// created without a team, given one, losing it, deleted.
func TestTeamlessFollowWrites(t *testing.T) {
	backends(t, func(t *testing.T, e *changeEnv) {
		e.mustPut(`{"identifier": "service", "schema": {"properties": {"cost": {"type": "number"}}}}`)
		groups := func(fn string) string {
			t.Helper()
			q := catalog.AggregateQuery{Func: fn, GroupBy: "$team"}
			if fn != "count" {
				q.Property = "cost"
			}
			res, err := e.svc.Aggregate(e.ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := json.Marshal(res.Groups)
			return string(raw)
		}
		for _, step := range []struct{ write, count, sum string }{
			{`{"identifier": "a", "properties": {"cost": 2}}`, `[{"key":null,"value":1}]`, `[{"key":null,"value":2}]`},
			{`{"identifier": "b", "team": ["x"], "properties": {"cost": 3}}`, `[{"key":null,"value":1},{"key":"x","value":1}]`, `[{"key":null,"value":2},{"key":"x","value":3}]`},
			{`{"identifier": "a", "team": ["x", "y"], "properties": {"cost": 2}}`, `[{"key":"x","value":2},{"key":"y","value":1}]`, `[{"key":"x","value":5},{"key":"y","value":2}]`},
			{`{"identifier": "b", "team": [], "properties": {"cost": 3}}`, `[{"key":null,"value":1},{"key":"x","value":1},{"key":"y","value":1}]`, `[{"key":null,"value":3},{"key":"x","value":2},{"key":"y","value":2}]`},
			{"delete b", `[{"key":"x","value":1},{"key":"y","value":1}]`, `[{"key":"x","value":2},{"key":"y","value":2}]`},
		} {
			if step.write == "delete b" {
				if _, err := e.svc.DeleteEntity(e.ctx, catalog.Ref{Blueprint: "service", Identifier: "b"}, false); err != nil {
					t.Fatal(err)
				}
			} else {
				e.putEntity("service", step.write)
			}
			if got := groups("count"); got != step.count {
				t.Errorf("after %s: count by team %s, want %s", step.write, got, step.count)
			}
			if got := groups("sum"); got != step.sum {
				t.Errorf("after %s: sum by team %s, want %s", step.write, got, step.sum)
			}
		}
	})
}
