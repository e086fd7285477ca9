package rediscatalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

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

// TestAggregationsExactUnderConcurrency: incidents opened, resolved, moved
// between services and deleted by concurrent writers while two workers
// recompute; once settled every service's aggregations equal a count over
// the stored incidents.
func TestAggregationsExactUnderConcurrency(t *testing.T) {
	backends(t, func(t *testing.T, e *changeEnv) {
		e.derivedCatalog()
		const services, incidents = 6, 40
		e.putEntity("team", `{"identifier": "payments", "properties": {"slackChannel": "#pay"}}`)
		for i := range services {
			e.putEntity("service", fmt.Sprintf(`{"identifier": "s%d", "properties": {"language": "go", "tier": 1}, "relations": {"owner": "payments"}}`, i))
		}
		stopWorkers := e.deriveWorkers(2)
		var writers sync.WaitGroup
		for w := range 3 {
			writers.Add(1)
			go func() {
				defer writers.Done()
				r := rand.New(rand.NewPCG(uint64(w), 7))
				for range 60 {
					id := fmt.Sprintf("inc-%d", r.IntN(incidents))
					if r.IntN(6) == 0 {
						_, err := e.svc.DeleteEntity(e.ctx, catalog.Ref{Blueprint: "incident", Identifier: id}, false)
						if err != nil && !errors.Is(err, catalog.ErrNotFound) {
							t.Errorf("delete %s: %v", id, err)
						}
						continue
					}
					status := []string{"open", "resolved"}[r.IntN(2)]
					doc := fmt.Sprintf(`{"identifier": %q, "properties": {"status": %q, "minutes": %d}, "relations": {"service": "s%d"}}`, id, status, r.IntN(100), r.IntN(services))
					ent, err := catalog.DecodeEntity([]byte(doc))
					if err != nil {
						t.Error(err)
						return
					}
					ent.Blueprint = "incident"
					if _, _, err := e.svc.PutEntity(e.ctx, ent, false); err != nil {
						t.Errorf("put %s: %v", id, err)
					}
				}
			}()
		}
		writers.Wait()
		stopWorkers()
		e.settle()

		open := map[string]float64{}
		minutes := map[string][]float64{}
		ids, _, err := e.store.EntityIDs(e.ctx, "incident", "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			inc := e.entity("incident", id)
			svc := inc.RelationTargets("service")[0]
			if inc.Properties["status"] == "open" {
				open[svc]++
			}
			minutes[svc] = append(minutes[svc], inc.Properties["minutes"].(float64))
		}
		for i := range services {
			id := fmt.Sprintf("s%d", i)
			got := e.entity("service", id)
			if got.Properties["openIncidents"] != open[id] {
				t.Errorf("%s: openIncidents %v, want %v", id, got.Properties["openIncidents"], open[id])
			}
			var want any
			if m := minutes[id]; len(m) > 0 {
				slices.Sort(m)
				want = m[len(m)/2]
				if len(m)%2 == 0 {
					want = (m[len(m)/2-1] + m[len(m)/2]) / 2
				}
			}
			if got.Properties["medianMinutes"] != want {
				t.Errorf("%s: medianMinutes %v, want %v", id, got.Properties["medianMinutes"], want)
			}
			wantLevel := "Gold"
			if open[id] > 0 {
				wantLevel = "Silver"
			}
			if lv := catalog.ScorecardLevelOf(got, "readiness"); lv != wantLevel {
				t.Errorf("%s: level %q, want %s (%v open)", id, lv, wantLevel, open[id])
			}
		}
	})
}

// TestRegradingResumesAfterCrash: a worker that claimed a blueprint's
// regrading and died is replaced once its claim is stale; the next one
// continues from the recorded progress, and every entity ends graded.
func TestRegradingResumesAfterCrash(t *testing.T) {
	backends(t, func(t *testing.T, e *changeEnv) {
		e.derivedCatalog()
		e.settle()
		var bulk []catalog.WriteItem
		for i := range 350 {
			ent, err := catalog.DecodeEntity(fmt.Appendf(nil, `{"identifier": "s%03d", "properties": {"language": "go", "tier": 1}}`, i))
			if err != nil {
				t.Fatal(err)
			}
			ent.Blueprint = "service"
			bulk = append(bulk, catalog.WriteItem{Entity: ent})
		}
		if _, err := e.svc.Write(e.ctx, bulk); err != nil {
			t.Fatal(err)
		}
		e.settle()
		// A new rule regrades everything; worker A claims it and dies.
		var sc catalog.Scorecard
		if err := json.Unmarshal([]byte(readiness), &sc); err != nil {
			t.Fatal(err)
		}
		sc.Rules = append(sc.Rules, catalog.ScorecardRule{Identifier: "tier-one", Level: "Bronze", Query: mustQuery(t, `{"combinator": "and", "rules": [{"property": "tier", "operator": "=", "value": 1}]}`)})
		if _, _, err := e.svc.PutScorecard(e.ctx, "service", &sc); err != nil {
			t.Fatal(err)
		}
		claimed, err := e.store.Claim(e.ctx, 10, time.Minute)
		if err != nil || len(claimed) != 1 || claimed[0].Kind != catalog.MarkBlueprint {
			t.Fatalf("claim: %v, %v", claimed, err)
		}
		// It recorded progress over the first 100 before dying.
		start, err := e.store.DeriveProgress(e.ctx, "service")
		if err != nil || start == nil || start.Run == "" || start.Done != 0 {
			t.Fatalf("progress of a new run: %+v, %v", start, err)
		}
		first := &catalog.DeriveProgress{Run: start.Run, After: "s099", Done: 100, Total: 350}
		if ok, err := e.store.SaveDeriveProgress(e.ctx, "service", start, first); !ok || err != nil {
			t.Fatalf("save progress: %v, %v", ok, err)
		}
		if ok, _ := e.store.SaveDeriveProgress(e.ctx, "service", start, first); ok {
			t.Fatal("a save from a progress no longer stored succeeded")
		}
		if n, err := e.svc.RunDeriveOnce(e.ctx); n != 0 || err != nil {
			t.Fatalf("with the claim fresh, another worker took %d marks (%v)", n, err)
		}
		view, err := e.svc.GetScorecard(e.ctx, "service", "readiness")
		if err != nil || view.Evaluation.State != "running" || view.Evaluation.Done != 100 {
			t.Fatalf("evaluation while claimed: %+v, %v", view.Evaluation, err)
		}
		// The claim goes stale: B takes over from s099.
		e.rdb.ZAdd(e.ctx, e.store.keys.claimed(), redis.Z{Score: 0, Member: dirtyMember(catalog.MarkBlueprint, catalog.Ref{Blueprint: "service"})})
		e.settle()
		view, err = e.svc.GetScorecard(e.ctx, "service", "readiness")
		if err != nil || view.Evaluation.State != "done" || view.Evaluation.Done != 350 || view.Evaluation.Total != 350 {
			t.Fatalf("evaluation after takeover: %+v, %v", view.Evaluation, err)
		}
		for _, id := range []string{"s000", "s099", "s100", "s349"} {
			got := e.entity("service", id)
			res, _ := got.Scorecards["readiness"].(map[string]any)
			rules, _ := res["rules"].([]any)
			if id >= "s100" && len(rules) != 5 {
				t.Errorf("%s: %d rule results, want 5 (regraded)", id, len(rules))
			}
		}
	})
}

// TestMirrorChangesAreAnnounced: a change of a property that mirror
// properties read through a relation is an entity.updated event on each
// reader, naming the mirrors; a change of a property nobody reads is not.
func TestMirrorChangesAreAnnounced(t *testing.T) {
	backends(t, func(t *testing.T, e *changeEnv) {
		e.mustPut(`{"identifier": "team", "schema": {"properties": {"slackChannel": {"type": "string"}, "budget": {"type": "number"}}}}`)
		e.mustPut(`{"identifier": "service", "relations": {"owner": {"target": "team"}},
		  "mirrorProperties": {"ownerSlack": {"path": "owner.slackChannel"}, "ownerName": {"path": "owner.$title"}}}`)
		e.putEntity("team", `{"identifier": "payments", "title": "Payments", "properties": {"slackChannel": "#pay", "budget": 1}}`)
		e.putEntity("service", `{"identifier": "checkout", "relations": {"owner": "payments"}}`)
		e.putEntity("service", `{"identifier": "cart", "relations": {"owner": "payments"}}`)
		e.putEntity("service", `{"identifier": "orphan"}`)
		e.settle()
		mirrorEvents := func() map[string][]string {
			evs, err := e.svc.Events(e.ctx, "0", 1000, 0)
			if err != nil {
				t.Fatal(err)
			}
			out := map[string][]string{}
			for _, ev := range evs {
				if ev.Type == catalog.EventEntityUpdated && ev.Actor == catalog.DeriveActor && len(ev.Detail) > 0 {
					var d catalog.MirrorsChanged
					if err := json.Unmarshal(ev.Detail, &d); err != nil {
						t.Fatal(err)
					}
					if d.Cause != (catalog.Ref{Blueprint: "team", Identifier: "payments"}) {
						t.Errorf("cause %v", d.Cause)
					}
					out[ev.Identifier] = append(out[ev.Identifier], d.Mirrors...)
				}
			}
			return out
		}
		e.putEntity("team", `{"identifier": "payments", "title": "Payments", "properties": {"slackChannel": "#pay", "budget": 2}}`)
		e.settle()
		if got := mirrorEvents(); len(got) != 0 {
			t.Fatalf("budget (not mirrored) changed: mirror events %v", got)
		}
		e.putEntity("team", `{"identifier": "payments", "title": "Payments team", "properties": {"slackChannel": "#payments", "budget": 2}}`)
		e.settle()
		got := mirrorEvents()
		want := map[string][]string{"checkout": {"ownerName", "ownerSlack"}, "cart": {"ownerName", "ownerSlack"}}
		if !equalJSON(got, want) {
			t.Errorf("mirror events %v, want %v", got, want)
		}
		if v := e.entity("service", "checkout").Properties["ownerSlack"]; v != "#payments" {
			t.Errorf("ownerSlack reads %v", v)
		}
	})
}

// TestRegradingUnderRedefinitions: scorecards defined one after the other
// while a worker regrades: every run that a new definition overtakes
// stops, and in the end every entity is graded by every scorecard.
func TestRegradingUnderRedefinitions(t *testing.T) {
	backends(t, func(t *testing.T, e *changeEnv) {
		e.mustPut(`{"identifier": "service", "schema": {"properties": {"tier": {"type": "integer"}}}}`)
		var bulk []catalog.WriteItem
		for i := range 1200 {
			ent, err := catalog.DecodeEntity(fmt.Appendf(nil, `{"identifier": "s%04d", "properties": {"tier": %d}}`, i, i%4))
			if err != nil {
				t.Fatal(err)
			}
			ent.Blueprint = "service"
			bulk = append(bulk, catalog.WriteItem{Entity: ent})
		}
		if _, err := e.svc.Write(e.ctx, bulk); err != nil {
			t.Fatal(err)
		}
		stopWorker := e.deriveWorkers(1)
		for i := range 5 {
			sc := &catalog.Scorecard{Identifier: fmt.Sprintf("sc%d", i), Rules: []catalog.ScorecardRule{{Identifier: "low", Level: "Gold",
				Query: mustQuery(t, fmt.Sprintf(`{"combinator": "and", "rules": [{"property": "tier", "operator": "<=", "value": %d}]}`, i%4))}}}
			if _, _, err := e.svc.PutScorecard(e.ctx, "service", sc); err != nil {
				t.Fatal(err)
			}
			// Let the worker get some way into the run before the next.
			waitFor(t, func() bool {
				p, err := e.store.DeriveProgress(e.ctx, "service")
				return err == nil && p != nil && p.Done > 0
			})
		}
		stopWorker()
		e.settle()
		for i := range 5 {
			total := 0
			for _, lv := range []string{"Basic", "Bronze", "Silver", "Gold"} {
				q := mustQuery(t, fmt.Sprintf(`{"combinator": "and", "rules": [{"property": "$blueprint", "operator": "=", "value": "service"}, {"property": "scorecards.sc%d.level", "operator": "=", "value": %q}]}`, i, lv))
				page, err := e.svc.Search(e.ctx, catalog.SearchQuery{Query: q, Limit: 1})
				if err != nil {
					t.Fatal(err)
				}
				total += page.Total
			}
			if total != 1200 {
				t.Errorf("sc%d grades %d services, want 1200", i, total)
			}
		}
		for _, id := range []string{"s0000", "s0601", "s1199"} {
			if got := e.entity("service", id).Scorecards; len(got) != 5 {
				t.Errorf("%s graded by %d scorecards, want 5", id, len(got))
			}
		}
	})
}

// waitFor waits, generously, until cond holds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 60 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRemarkStopsRun: marking a blueprint again starts its progress over
// under a new run; the run under way can no longer save its progress
// (whether it had saved any or not), so it stops, and the next run covers
// every entity under the new definition.
func TestRemarkStopsRun(t *testing.T) {
	backends(t, func(t *testing.T, e *changeEnv) {
		e.derivedCatalog()
		started, err := e.store.DeriveProgress(e.ctx, "service")
		if err != nil || started == nil {
			t.Fatalf("progress: %+v, %v", started, err)
		}
		sc, err := e.svc.GetScorecard(e.ctx, "service", "readiness")
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.svc.PutScorecard(e.ctx, "service", sc.Scorecard); err != nil {
			t.Fatal(err)
		}
		again, err := e.store.DeriveProgress(e.ctx, "service")
		if err != nil || again == nil || again.Run == started.Run || again.Done != 0 {
			t.Fatalf("progress after marking again: %+v (before %+v), %v", again, started, err)
		}
		next := &catalog.DeriveProgress{Run: started.Run, After: "x", Done: 1}
		if ok, err := e.store.SaveDeriveProgress(e.ctx, "service", started, next); ok || err != nil {
			t.Errorf("the overtaken run saved its progress: %v, %v", ok, err)
		}
		if ok, err := e.store.SaveDeriveProgress(e.ctx, "service", nil, next); ok || err != nil {
			t.Errorf("a run that had saved nothing saved its progress: %v, %v", ok, err)
		}
	})
}

// TestPresentationChangesRegradeNothing: retitling a graded blueprint
// marks nothing; changing what rules read marks it whole.
func TestPresentationChangesRegradeNothing(t *testing.T) {
	backends(t, func(t *testing.T, e *changeEnv) {
		e.derivedCatalog()
		e.settle()
		bp, err := e.svc.GetBlueprint(e.ctx, "service")
		if err != nil {
			t.Fatal(err)
		}
		next := *bp
		next.Title, next.Description = "Services", "What we run"
		if _, _, err := e.svc.PutBlueprint(e.ctx, &next, false); err != nil {
			t.Fatal(err)
		}
		if marked, err := e.store.Marked(e.ctx, catalog.MarkBlueprint, catalog.Ref{Blueprint: "service"}); err != nil || marked {
			t.Errorf("a new title marked the blueprint: %v, %v", marked, err)
		}
		next.CalculationProperties = map[string]catalog.CalculationProperty{"x": {JQ: ".identifier"}}
		if _, _, err := e.svc.PutBlueprint(e.ctx, &next, false); err != nil {
			t.Fatal(err)
		}
		if marked, err := e.store.Marked(e.ctx, catalog.MarkBlueprint, catalog.Ref{Blueprint: "service"}); err != nil || !marked {
			t.Errorf("a new calculation property did not mark the blueprint: %v, %v", marked, err)
		}
	})
}

// TestScorecardDefinedDuringValidationStays: a blueprint change that is
// validated against every entity is applied with the scorecards stored
// when it applies, not those of when it began.
func TestScorecardDefinedDuringValidationStays(t *testing.T) {
	backends(t, func(t *testing.T, e *changeEnv) {
		e.mustPut(`{"identifier": "service", "schema": {"properties": {"tier": {"type": "integer"}}}}`)
		e.putEntity("service", `{"identifier": "a", "properties": {"tier": 1}}`)
		sc := &catalog.Scorecard{Identifier: "ready", Rules: []catalog.ScorecardRule{{Identifier: "low", Level: "Gold",
			Query: mustQuery(t, `{"combinator": "and", "rules": [{"property": "tier", "operator": "<=", "value": 1}]}`)}}}
		// The validation's scan is where another admin defines a scorecard.
		var svc *catalog.Service
		svc = catalog.NewService(e.store, catalog.Options{Background: func(fn func()) {
			if _, _, err := svc.PutScorecard(e.ctx, "service", sc); err != nil {
				t.Errorf("put scorecard during validation: %v", err)
			}
			fn()
		}})
		var bp catalog.Blueprint
		if err := json.Unmarshal([]byte(`{"identifier": "service", "schema": {"properties": {"tier": {"type": "integer", "maximum": 5}}}}`), &bp); err != nil {
			t.Fatal(err)
		}
		if _, _, err := svc.PutBlueprint(e.ctx, &bp, false); err != nil {
			t.Fatalf("tightening: %v", err)
		}
		got, err := svc.GetBlueprint(e.ctx, "service")
		if err != nil {
			t.Fatal(err)
		}
		if got.Schema.Properties["tier"].Maximum == nil || got.Scorecards["ready"] == nil {
			t.Fatalf("after the validated change: maximum %v, scorecards %v", got.Schema.Properties["tier"].Maximum, got.Scorecards)
		}
	})
}

// TestDerivedEventsCarryDepth: a change made by an automation (depth 3)
// reaches the level change it causes elsewhere at the same depth, so that
// an automation loop through derived values still ends at the limit; a
// later change by a person starts from 0 again.
func TestDerivedEventsCarryDepth(t *testing.T) {
	backends(t, func(t *testing.T, e *changeEnv) {
		e.derivedCatalog()
		e.putEntity("team", `{"identifier": "payments", "properties": {"slackChannel": "#pay"}}`)
		e.putEntity("service", `{"identifier": "checkout", "properties": {"language": "go", "tier": 1}, "relations": {"owner": "payments"}}`)
		e.settle()
		levelDepths := func() []int {
			hist, err := e.svc.History(e.ctx, catalog.Ref{Blueprint: "service", Identifier: "checkout"})
			if err != nil {
				t.Fatal(err)
			}
			var out []int
			for _, ev := range hist {
				if ev.Type == catalog.EventScorecardLevelChanged {
					out = append(out, ev.Depth)
				}
			}
			return out
		}
		put := func(ctx context.Context, js string) {
			ent, err := catalog.DecodeEntity([]byte(js))
			if err != nil {
				t.Fatal(err)
			}
			ent.Blueprint = "incident"
			if _, _, err := e.svc.PutEntity(ctx, ent, false); err != nil {
				t.Fatal(err)
			}
		}
		put(catalog.WithDepth(e.ctx, 3), `{"identifier": "inc-1", "properties": {"status": "open"}, "relations": {"service": "checkout"}}`)
		e.settle()
		put(e.ctx, `{"identifier": "inc-1", "properties": {"status": "resolved"}, "relations": {"service": "checkout"}}`)
		e.settle()
		if got := levelDepths(); !equalJSON(got, []int{3, 0}) {
			t.Errorf("level change depths %v, want [3 0]", got)
		}
	})
}

// deriveWorkers runs n derived-value workers until the returned stop is
// called (it waits for them).
func (e *changeEnv) deriveWorkers(n int) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := e.svc.RunDeriveOnce(e.ctx); err != nil {
					e.t.Errorf("RunDeriveOnce: %v", err)
					return
				}
			}
		}()
	}
	return func() { close(done); wg.Wait() }
}

// TestSortByLevelFollowsRank: sorting by a scorecard level orders by the
// scorecard's levels (Basic < Bronze < Silver < Gold), not by the
// alphabet (which puts Gold before Silver); ungraded entities come last
// both ways.
func TestSortByLevelFollowsRank(t *testing.T) {
	backends(t, func(t *testing.T, e *changeEnv) {
		e.mustPut(`{"identifier": "service", "schema": {"properties": {"tier": {"type": "integer"}, "kind": {"type": "string"}}}}`)
		rule := func(id, level string, max int) catalog.ScorecardRule {
			return catalog.ScorecardRule{Identifier: id, Level: level,
				Query: mustQuery(t, fmt.Sprintf(`{"combinator": "and", "rules": [{"property": "tier", "operator": "<=", "value": %d}]}`, max))}
		}
		sc := &catalog.Scorecard{Identifier: "ready", Rules: []catalog.ScorecardRule{rule("t3", "Bronze", 3), rule("t2", "Silver", 2), rule("t1", "Gold", 1)},
			Filter: mustQuery(t, `{"combinator": "and", "rules": [{"property": "kind", "operator": "!=", "value": "library"}]}`)}
		if _, _, err := e.svc.PutScorecard(e.ctx, "service", sc); err != nil {
			t.Fatal(err)
		}
		for id, props := range map[string]string{"gold": `"tier": 1`, "silver": `"tier": 2`, "bronze": `"tier": 3`, "basic": `"tier": 4`, "lib": `"tier": 1, "kind": "library"`} {
			e.putEntity("service", `{"identifier": "`+id+`", "properties": {`+props+`}}`)
		}
		for order, want := range map[string]string{"asc": "basic bronze silver gold lib", "desc": "gold silver bronze basic lib"} {
			page, err := e.svc.Search(e.ctx, catalog.SearchQuery{Sort: []catalog.SortField{{Property: "scorecards.ready.level", Order: order}}})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ent := range page.Entities {
				got = append(got, ent.Identifier)
			}
			if strings.Join(got, " ") != want {
				t.Errorf("sort %s: %v, want %s", order, got, want)
			}
		}
	})
}
