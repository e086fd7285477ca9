package rediscatalog

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/portico-dev/portico/core/catalog"
)

// settle runs the derived-values worker until nothing is marked.
func (e *changeEnv) settle() {
	e.t.Helper()
	for range 100 {
		n, err := e.svc.RunDeriveOnce(e.ctx)
		if err != nil {
			e.t.Fatalf("RunDeriveOnce: %v", err)
		}
		if n == 0 {
			return
		}
	}
	e.t.Fatal("derived values never settled")
}

func (e *changeEnv) putEntity(bp, js string) *catalog.Entity {
	e.t.Helper()
	ent, err := catalog.DecodeEntity([]byte(js))
	if err != nil {
		e.t.Fatal(err)
	}
	ent.Blueprint = bp
	out, _, err := e.svc.PutEntity(e.ctx, ent, false)
	if err != nil {
		e.t.Fatalf("put %s %s: %v", bp, js, err)
	}
	return out
}

func (e *changeEnv) entity(bp, id string) *catalog.Entity {
	e.t.Helper()
	ent, err := e.svc.GetEntity(e.ctx, catalog.Ref{Blueprint: bp, Identifier: id})
	if err != nil {
		e.t.Fatalf("get %s/%s: %v", bp, id, err)
	}
	return ent
}

func (e *changeEnv) level(id string) string {
	e.t.Helper()
	return catalog.ScorecardLevelOf(e.entity("service", id), "readiness")
}

const readiness = `{"identifier": "readiness", "title": "Production readiness",
 "filter": {"combinator": "and", "rules": [{"property": "tier", "operator": "<=", "value": 2}]},
 "rules": [
  {"identifier": "has-owner", "level": "Bronze", "query": {"combinator": "and", "rules": [{"property": "owner", "operator": "isNotEmpty"}]}},
  {"identifier": "has-language", "level": "Bronze", "query": {"combinator": "and", "rules": [{"property": "language", "operator": "isNotEmpty"}]}},
  {"identifier": "owner-on-slack", "level": "Silver", "query": {"combinator": "and", "rules": [{"property": "owner.slackChannel", "operator": "isNotEmpty"}]}},
  {"identifier": "no-open-incidents", "level": "Gold", "query": {"combinator": "and", "rules": [{"property": "openIncidents", "operator": "=", "value": 0}]}}]}`

func (e *changeEnv) derivedCatalog() {
	e.t.Helper()
	e.mustPut(`{"identifier": "team", "schema": {"properties": {"slackChannel": {"type": "string"}}}}`)
	e.mustPut(`{"identifier": "service", "schema": {"properties": {"language": {"type": "string"}, "tier": {"type": "integer"}}},
	  "relations": {"owner": {"target": "team"}}}`)
	e.mustPut(`{"identifier": "incident", "schema": {"properties": {"status": {"type": "string"}, "minutes": {"type": "number"}}},
	  "relations": {"service": {"target": "service"}}}`)
	e.mustPut(`{"identifier": "service", "schema": {"properties": {"language": {"type": "string"}, "tier": {"type": "integer"}}},
	  "relations": {"owner": {"target": "team"}},
	  "aggregationProperties": {
	    "openIncidents": {"target": "incident", "relation": "service", "func": "count",
	      "query": {"combinator": "and", "rules": [{"property": "status", "operator": "=", "value": "open"}]}},
	    "medianMinutes": {"target": "incident", "relation": "service", "func": "median", "property": "minutes"}}}`)
	var sc catalog.Scorecard
	if err := json.Unmarshal([]byte(readiness), &sc); err != nil {
		e.t.Fatal(err)
	}
	if _, _, err := e.svc.PutScorecard(e.ctx, "service", &sc); err != nil {
		e.t.Fatalf("put scorecard: %v", err)
	}
}

// TestScorecardsFollowRelatedChanges: a service's level follows its own
// writes at once and, through RunDerive, its incidents (an aggregation)
// and its owner (a relation path); level changes are events in its
// history; levels and aggregations are searchable.
func TestScorecardsFollowRelatedChanges(t *testing.T) {
	backends(t, func(t *testing.T, e *changeEnv) {
		e.derivedCatalog()
		e.putEntity("team", `{"identifier": "payments", "properties": {"slackChannel": "#pay"}}`)
		e.putEntity("service", `{"identifier": "checkout", "properties": {"language": "go", "tier": 1}, "relations": {"owner": "payments"}}`)
		e.putEntity("service", `{"identifier": "batch", "properties": {"tier": 3}}`)
		e.settle()
		if got := e.level("checkout"); got != "Gold" {
			t.Fatalf("checkout: level %q, want Gold (%v)", got, e.entity("service", "checkout").Scorecards)
		}
		if got := e.level("batch"); got != "" {
			t.Errorf("batch (tier 3, outside the filter): level %q, want none", got)
		}
		if v := e.entity("service", "checkout").Properties["openIncidents"]; v != 0.0 {
			t.Errorf("openIncidents = %v, want 0", v)
		}

		// Its own write grades it in the same transaction.
		e.putEntity("service", `{"identifier": "checkout", "properties": {"tier": 1}, "relations": {"owner": "payments"}}`)
		if got := e.level("checkout"); got != "Basic" {
			t.Errorf("checkout without a language: level %q, want Basic", got)
		}
		e.putEntity("service", `{"identifier": "checkout", "properties": {"language": "go", "tier": 1}, "relations": {"owner": "payments"}}`)

		// An incident opening degrades it; resolving it improves it.
		e.putEntity("incident", `{"identifier": "inc-1", "properties": {"status": "open", "minutes": 10}, "relations": {"service": "checkout"}}`)
		e.putEntity("incident", `{"identifier": "inc-2", "properties": {"status": "resolved", "minutes": 30}, "relations": {"service": "checkout"}}`)
		e.settle()
		got := e.entity("service", "checkout")
		if lv := catalog.ScorecardLevelOf(got, "readiness"); lv != "Silver" || got.Properties["openIncidents"] != 1.0 || got.Properties["medianMinutes"] != 20.0 {
			t.Fatalf("after an open incident: level %q, openIncidents %v, medianMinutes %v; want Silver, 1, 20", lv, got.Properties["openIncidents"], got.Properties["medianMinutes"])
		}
		e.putEntity("incident", `{"identifier": "inc-1", "properties": {"status": "resolved", "minutes": 10}, "relations": {"service": "checkout"}}`)
		e.settle()
		if lv := e.level("checkout"); lv != "Gold" {
			t.Errorf("after resolving: level %q, want Gold", lv)
		}

		// The owner's channel goes: the path rule fails.
		e.putEntity("team", `{"identifier": "payments"}`)
		e.settle()
		if lv := e.level("checkout"); lv != "Bronze" {
			t.Errorf("owner without a channel: level %q, want Bronze", lv)
		}

		hist, err := e.svc.History(e.ctx, catalog.Ref{Blueprint: "service", Identifier: "checkout"})
		if err != nil {
			t.Fatal(err)
		}
		var changes []catalog.ScorecardLevelChange
		for _, ev := range hist {
			if ev.Type == catalog.EventScorecardLevelChanged {
				var ch catalog.ScorecardLevelChange
				if err := json.Unmarshal(ev.Detail, &ch); err != nil {
					t.Fatal(err)
				}
				changes = append(changes, ch)
			}
		}
		want := []catalog.ScorecardLevelChange{
			{Scorecard: "readiness", From: "Gold", To: "Basic", Direction: "degraded"},
			{Scorecard: "readiness", From: "Basic", To: "Gold", Direction: "improved"},
			{Scorecard: "readiness", From: "Gold", To: "Silver", Direction: "degraded"},
			{Scorecard: "readiness", From: "Silver", To: "Gold", Direction: "improved"},
			{Scorecard: "readiness", From: "Gold", To: "Bronze", Direction: "degraded"},
		}
		if !equalJSON(changes, want) {
			t.Errorf("level changes in history:\n%+v\nwant\n%+v", changes, want)
		}

		for q, want := range map[string]string{
			`{"property": "scorecards.readiness.level", "operator": "=", "value": "Bronze"}`: "checkout",
			`{"property": "openIncidents", "operator": "=", "value": 0}`:                     "batch,checkout",
		} {
			page, err := e.svc.Search(e.ctx, catalog.SearchQuery{Query: mustQuery(t, `{"combinator": "and", "rules": [{"property": "$blueprint", "operator": "=", "value": "service"}, `+q+`]}`)})
			if err != nil {
				t.Fatalf("search %s: %v", q, err)
			}
			var got []string
			for _, ent := range page.Entities {
				got = append(got, ent.Identifier)
			}
			if gotS := joinIDs(got); gotS != want {
				t.Errorf("search %s: %s, want %s", q, gotS, want)
			}
		}
	})
}

// TestScorecardResultsAreReadOnly: a document setting scorecards or
// aggregations is refused.
func TestScorecardResultsAreReadOnly(t *testing.T) {
	for _, doc := range []string{
		`{"identifier": "x", "scorecards": {"readiness": {"level": "Gold"}}}`,
		`{"identifier": "x", "aggregations": {"openIncidents": 0}}`,
	} {
		if _, err := catalog.DecodeEntity([]byte(doc)); !errors.Is(err, catalog.ErrMalformed) {
			t.Errorf("%s: %v, want malformed", doc, err)
		}
	}
}

func mustQuery(t *testing.T, js string) *catalog.Rule {
	t.Helper()
	q, err := catalog.DecodeQuery([]byte(js))
	if err != nil {
		t.Fatalf("query %s: %v", js, err)
	}
	return q
}

func joinIDs(ids []string) string {
	slices.Sort(ids)
	out := ""
	for i, id := range ids {
		if i > 0 {
			out += ","
		}
		out += id
	}
	return out
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
