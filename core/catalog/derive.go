package catalog

import (
	"context"
	"encoding/json"
	"slices"
	"time"
)

// Derived values — aggregation properties and scorecard results — are
// stored on the entity and kept current three ways:
//   - a write of an entity carries its aggregations over and grades it in
//     the same transaction (batch.derive);
//   - the same transaction marks the entities whose derived values read
//     the written one (Blueprint.Dependents says which), and RunDerive
//     recomputes them, in any process, until none is marked;
//   - a change of a blueprint's scorecards or aggregation properties marks
//     the whole blueprint, which RunDerive recomputes in chunks, with
//     progress.
// Marks are written in the transactions that cause them, so none is lost
// to a crash; recomputing is idempotent, so a mark handled twice is
// harmless.

// Dependent names a blueprint whose derived values read another one's
// entities (the blueprint the Dependent is listed on).
type Dependent struct {
	Blueprint string `json:"blueprint"`
	// Aggregates lists the relations of the listing blueprint, pointing
	// at Blueprint, that Blueprint's aggregation properties count over.
	Aggregates []string `json:"aggregates,omitempty"`
	// Reads lists Blueprint's relations, pointing at the listing
	// blueprint, through which it reads (mirror properties, and the
	// relation paths of its scorecards' rules).
	Reads []string `json:"reads,omitempty"`
	// Properties lists the listing blueprint's properties (and
	// meta-properties) read through them: a change elsewhere concerns
	// no reader.
	Properties []string `json:"properties,omitempty"`
	// Grades: Blueprint has scorecards, which are regraded when what they
	// read changes.
	Grades bool `json:"grades,omitempty"`
}

// DeriveActor writes recomputed derived values.
const DeriveActor = "portico:derive"

// derive completes the batch's candidate entities: aggregation values
// carried over from the stored version, scorecards graded (reading the
// relation targets that grading needs, watched).
func (w *batch) derive(ctx context.Context) error {
	inBatch := map[Ref]*Entity{}
	for _, a := range w.afters {
		if a != nil {
			inBatch[a.Ref()] = a
		}
	}
	var need []Ref
	seen := map[Ref]bool{}
	for i, a := range w.afters {
		if a == nil {
			continue
		}
		c := w.bps[a.Blueprint]
		a.Aggregations = c.carryAggregations(w.befores[i])
		for _, r := range c.gradingTargets(a) {
			if inBatch[r] == nil && !seen[r] {
				seen[r] = true
				need = append(need, r)
			}
		}
	}
	targets := make(map[Ref]*Entity, len(need)+len(inBatch))
	if len(need) > 0 {
		got, err := w.tx.Entities(ctx, need)
		if err != nil {
			return err
		}
		for i, e := range got {
			if e != nil {
				targets[need[i]] = e
			}
		}
	}
	for r, e := range inBatch {
		targets[r] = e
	}
	now := w.s.now()
	for _, a := range w.afters {
		if a != nil {
			a.Scorecards = w.bps[a.Blueprint].grade(a, targets, now)
		}
	}
	return nil
}

// carryAggregations returns the aggregation values an entity keeps across
// a write: the stored ones of the properties still defined (a write
// changes what points at others, not what points at it); a new entity
// starts from the values over nothing (RunDerive checks them).
func (c *CompiledBlueprint) carryAggregations(before *Entity) map[string]any {
	if before == nil {
		return c.initialAggregations()
	}
	if len(c.aggregations) == 0 {
		return nil
	}
	out := make(map[string]any, len(c.aggregations))
	for _, a := range c.aggregations {
		if v, ok := before.Aggregations[a.name]; ok {
			out[a.name] = v
		}
	}
	return out
}

// derivedEffects records, in the transaction that wrote after over before
// (either may be nil), what the change means beyond itself: the level
// changes of its scorecards (events in the stream and its history) and
// the marks on the entities whose derived values read it.
func (s *Service) derivedEffects(tx Tx, c *CompiledBlueprint, before, after *Entity, ev Event) {
	if before != nil && after != nil {
		for _, ch := range c.levelChanges(before, after) {
			detail, _ := json.Marshal(ch)
			lev := ev
			lev.Type, lev.Detail = EventScorecardLevelChanged, detail
			lev.Before, lev.After = rawJSON(before), rawJSON(after)
			tx.Record(lev)
		}
	}
	if before == nil && after != nil && len(c.aggregations) > 0 {
		tx.MarkDirty(after.Ref(), ev.Depth) // something may still point at its name
	}
	markDependents(tx, c.Blueprint, before, after, ev.Depth)
}

// markDependents marks the entities whose derived values read the entity
// changing from before to after; depth is the change's automation depth,
// which the recomputations' events carry on (so that a loop through
// derived values still ends).
func markDependents(tx Tx, bp *Blueprint, before, after *Entity, depth int) {
	e := after
	if e == nil {
		e = before
	}
	var changed []string // properties readers read that changed
	for _, d := range bp.Dependents {
		for _, rel := range d.Aggregates {
			var ids []string
			if before != nil {
				ids = append(ids, before.RelationTargets(rel)...)
			}
			if after != nil {
				ids = append(ids, after.RelationTargets(rel)...)
			}
			slices.Sort(ids)
			for _, id := range slices.Compact(ids) {
				tx.MarkDirty(Ref{Blueprint: d.Blueprint, Identifier: id}, depth)
			}
		}
		// Readers point at an entity that exists before and after:
		// relations to a missing entity are refused, and its deletion
		// detaches them (their own writes).
		if before == nil || after == nil {
			continue
		}
		for _, p := range d.Properties {
			if !slices.Contains(changed, p) && valueChanged(before, after, p) {
				changed = append(changed, p)
			}
		}
	}
	if len(changed) > 0 {
		slices.Sort(changed)
		tx.MarkReferrers(e.Ref(), changed, depth)
	}
}

// valueChanged reports whether property (or meta-property) p differs
// between two versions of an entity.
func valueChanged(before, after *Entity, p string) bool {
	a, okA := Lookup(before, before.Properties, p)
	b, okB := Lookup(after, after.Properties, p)
	if okA != okB {
		return true
	}
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) != string(y)
}

// levelChanges lists the scorecards whose level differs between two
// versions of an entity graded both times (entering or leaving a
// scorecard's filter is not a level change).
func (c *CompiledBlueprint) levelChanges(before, after *Entity) []ScorecardLevelChange {
	var out []ScorecardLevelChange
	for _, cs := range c.scorecards {
		id := cs.sc.Identifier
		from, to := ScorecardLevelOf(before, id), ScorecardLevelOf(after, id)
		if from == to || from == "" || to == "" {
			continue
		}
		ch := ScorecardLevelChange{Scorecard: id, From: from, To: to, Direction: "improved"}
		if cs.levelRank(to) < cs.levelRank(from) {
			ch.Direction = "degraded"
		}
		out = append(out, ch)
	}
	return out
}

// dependents computes, for every blueprint, the Dependents list it should
// carry given all blueprints.
func dependents(all []*Blueprint) map[string][]Dependent {
	type key struct{ target, reader string }
	agg := map[key][]string{}
	reads := map[key][]string{}
	props := map[key][]string{}
	grades := map[string]bool{}
	for _, y := range all {
		for _, a := range y.AggregationProperties {
			k := key{a.Target, y.Identifier}
			agg[k] = append(agg[k], a.Relation)
		}
		c, err := CompileBlueprint(y)
		if err != nil {
			continue
		}
		grades[y.Identifier] = len(c.scorecards) > 0
		for _, list := range [][]Mirror{c.mirrors, c.paths} {
			for _, m := range list {
				k := key{y.Relations[m.Relation].Target, y.Identifier}
				reads[k] = append(reads[k], m.Relation)
				props[k] = append(props[k], m.Property)
			}
		}
	}
	out := map[string][]Dependent{}
	add := func(k key) {
		for _, d := range out[k.target] {
			if d.Blueprint == k.reader {
				return
			}
		}
		a, r, p := agg[k], reads[k], props[k]
		slices.Sort(a)
		slices.Sort(r)
		slices.Sort(p)
		d := Dependent{Blueprint: k.reader, Aggregates: slices.Compact(a), Reads: slices.Compact(r), Properties: slices.Compact(p)}
		d.Grades = len(d.Reads) > 0 && grades[k.reader]
		out[k.target] = append(out[k.target], d)
	}
	for k := range agg {
		add(k)
	}
	for k := range reads {
		add(k)
	}
	for t := range out {
		slices.SortFunc(out[t], func(a, b Dependent) int {
			if a.Blueprint < b.Blueprint {
				return -1
			}
			if a.Blueprint > b.Blueprint {
				return 1
			}
			return 0
		})
	}
	return out
}

// syncDependents rewrites, inside a blueprint-changing transaction, the
// Dependents of every blueprint whose list changes once changed (or, when
// changed is nil, without the deleted blueprint). The rewritten
// blueprints' UpdatedAt moves (it versions compiled copies); no event is
// appended: their definitions did not change.
func (s *Service) syncDependents(ctx context.Context, tx Tx, changed *Blueprint, deleted string) error {
	all, err := tx.Blueprints(ctx)
	if err != nil {
		return err
	}
	var set []*Blueprint
	for _, bp := range all {
		switch {
		case changed != nil && bp.Identifier == changed.Identifier:
			continue
		case bp.Identifier == deleted:
			continue
		}
		set = append(set, bp)
	}
	if changed != nil {
		set = append(set, changed)
	}
	deps := dependents(set)
	for _, bp := range set {
		want := deps[bp.Identifier]
		if sameDependents(bp.Dependents, want) {
			continue
		}
		bp.Dependents = want
		if changed != nil && bp.Identifier == changed.Identifier {
			continue // written by the caller
		}
		next := *bp
		next.UpdatedAt = changedBlueprintAt(bp.UpdatedAt, s.timestamp())
		tx.PutBlueprint(&next, Event{})
	}
	return nil
}

func sameDependents(a, b []Dependent) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y) || (len(a) == 0 && len(b) == 0)
}

// changedBlueprintAt is the UpdatedAt of a blueprint changed at now:
// strictly after the stored one.
func changedBlueprintAt(stored, now time.Time) time.Time {
	if now.After(stored) {
		return now
	}
	return stored.Add(time.Microsecond)
}
