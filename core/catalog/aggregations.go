package catalog

import (
	"context"
	"errors"
	"math"
	"slices"
	"time"
)

// Aggregation functions.
var aggregationFuncs = map[string]bool{"count": true, "sum": true, "avg": true, "min": true, "max": true, "median": true}

// compiledAggregation is one aggregation property ready to compute.
type compiledAggregation struct {
	name string
	AggregationProperty
}

// compileAggregation checks what an aggregation property says on its own;
// checkAggregations checks it against its target blueprint.
func compileAggregation(name string, a AggregationProperty, path string, vs *violations) *compiledAggregation {
	n := len(vs.list)
	if msg := blueprintIdentifierProblem(a.Target); msg != "" {
		vs.add(path+"/target", "%s", msg)
	}
	if a.Relation == "" {
		vs.add(path+"/relation", "required: the relation of %q entities that points here", a.Target)
	}
	switch {
	case !aggregationFuncs[a.Func]:
		vs.add(path+"/func", "must be one of count, sum, avg, min, max, median")
	case a.Func == "count" && a.Property != "":
		vs.add(path+"/property", "count takes no property")
	case a.Func != "count" && a.Property == "":
		vs.add(path+"/property", "required for %s", a.Func)
	}
	if a.Query != nil {
		if err := a.Query.Validate(path + "/query"); err != nil {
			var ve *ValidationError
			if errors.As(err, &ve) {
				vs.list = append(vs.list, ve.Violations...)
			}
		} else {
			a.Query.Walk(func(r *Rule) {
				if r.Operator == "relatedTo" {
					vs.add(path+"/query", "relatedTo is not available in aggregation queries")
				}
			})
		}
	}
	if len(vs.list) > n {
		return nil
	}
	return &compiledAggregation{name: name, AggregationProperty: a}
}

// checkAggregations checks bp's aggregation properties against their
// target blueprints: the relation must exist there and point at bp, the
// aggregated property must be a number.
func (s *Service) checkAggregations(ctx context.Context, tx Tx, bp *Blueprint) error {
	var vs violations
	for _, name := range sortedKeys(bp.AggregationProperties) {
		a := bp.AggregationProperties[name]
		path := pointer("aggregationProperties", name)
		target := bp
		if a.Target != bp.Identifier {
			t, err := tx.Blueprint(ctx, a.Target)
			if errors.Is(err, ErrNotFound) {
				vs.add(path+"/target", "blueprint %q does not exist", a.Target)
				continue
			} else if err != nil {
				return err
			}
			target = t
		}
		rel, ok := target.Relations[a.Relation]
		switch {
		case !ok:
			vs.add(path+"/relation", "blueprint %s has no relation %q", a.Target, a.Relation)
		case rel.Target != bp.Identifier:
			vs.add(path+"/relation", "relation %s.%s points at %s, not at %s", a.Target, a.Relation, rel.Target, bp.Identifier)
		}
		if a.Property != "" {
			p, ok := target.Schema.Properties[a.Property]
			if !ok || (p.Type != "number" && p.Type != "integer") {
				vs.add(path+"/property", "blueprint %s has no number property %q", a.Target, a.Property)
			}
		}
	}
	return vs.err("invalid blueprint")
}

// aggregate computes an aggregation over the entities whose relation
// points at the entity: count is a number, sum of nothing 0, the others
// null over nothing.
func (a *compiledAggregation) aggregate(referrers []*Entity, now time.Time) any {
	var vals []float64
	n := 0
	for _, r := range referrers {
		if r == nil || (a.Query != nil && !Match(a.Query, r, r.Properties, now, nil)) {
			continue
		}
		n++
		if a.Func == "count" {
			continue
		}
		if f, ok := queryNumber(r.Properties[a.Property]); ok && !math.IsNaN(f) {
			vals = append(vals, f)
		}
	}
	switch a.Func {
	case "count":
		return float64(n)
	case "sum":
		sum := 0.0
		for _, v := range vals {
			sum += v
		}
		return sum
	}
	if len(vals) == 0 {
		return nil
	}
	switch a.Func {
	case "avg":
		sum := 0.0
		for _, v := range vals {
			sum += v
		}
		return sum / float64(len(vals))
	case "min":
		return slices.Min(vals)
	case "max":
		return slices.Max(vals)
	}
	slices.Sort(vals)
	mid := len(vals) / 2
	if len(vals)%2 == 1 {
		return vals[mid]
	}
	return (vals[mid-1] + vals[mid]) / 2
}

// initialAggregations are the values of a new entity's aggregation
// properties: nothing points at an entity that did not exist.
func (c *CompiledBlueprint) initialAggregations() map[string]any {
	if len(c.aggregations) == 0 {
		return nil
	}
	out := make(map[string]any, len(c.aggregations))
	for i := range c.aggregations {
		out[c.aggregations[i].name] = c.aggregations[i].aggregate(nil, time.Time{})
	}
	return out
}
