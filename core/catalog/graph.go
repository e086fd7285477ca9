package catalog

import (
	"context"
	"fmt"
)

// Directions of a relation walk, seen from the entity the walk starts at.
const (
	// Upstream: entities whose relations point at the start (its dependants).
	Upstream = "upstream"
	// Downstream: entities the start's relations point at (its dependencies).
	Downstream = "downstream"
)

// MaxDepth bounds relation walks.
const MaxDepth = 3

// Graph is what a relation walk reads.
type Graph interface {
	// ReferrersOf returns, for each ref, the edges pointing at it.
	ReferrersOf(ctx context.Context, refs []Ref) ([][]Reference, error)
	Entities(ctx context.Context, refs []Ref) ([]*Entity, error)
}

// Hop is one entity reached by a walk.
type Hop struct {
	Ref      Ref    `json:"ref"`
	Relation string `json:"relation"`
	Depth    int    `json:"depth"`
	Via      Ref    `json:"via"`
}

// Visibility reports which of refs the reader may see. A nil Visibility
// sees everything.
type Visibility func(refs []Ref) ([]bool, error)

// Walk follows relations from start in one direction for up to depth hops
// (1..MaxDepth), optionally only through one relation name, and returns
// every entity reached with the first hop that reached it, in BFS order.
// blueprints supplies relation targets for downstream walks. The walk
// stays within what visible admits: from a start it does not admit it
// finds nothing, and it neither returns nor passes through an entity it
// does not admit, so no hop's Via names one.
func Walk(ctx context.Context, g Graph, start Ref, direction, relation string, depth int, blueprints map[string]*Blueprint, visible Visibility) ([]Hop, error) {
	return walk(ctx, g, start, direction, relation, depth, blueprints, visible, true)
}

// WalkThrough is Walk for a caller that checks every entity the walk
// returns itself (search matches each candidate against the reader's
// visibility): visible admits the start and the entities the walk passes
// through, but the last hop's entities are returned unchecked, which
// spares reading every entity of a large fan-out twice.
func WalkThrough(ctx context.Context, g Graph, start Ref, direction, relation string, depth int, blueprints map[string]*Blueprint, visible Visibility) ([]Hop, error) {
	return walk(ctx, g, start, direction, relation, depth, blueprints, visible, false)
}

func walk(ctx context.Context, g Graph, start Ref, direction, relation string, depth int, blueprints map[string]*Blueprint, visible Visibility, checkLast bool) ([]Hop, error) {
	if depth <= 0 {
		depth = 1
	}
	if depth > MaxDepth {
		depth = MaxDepth
	}
	if visible != nil {
		ok, err := visible([]Ref{start})
		if err != nil {
			return nil, fmt.Errorf("walk: %w", err)
		}
		if !ok[0] {
			return nil, nil
		}
	}
	seen := map[Ref]bool{start: true}
	var out []Hop
	frontier := []Ref{start}
	for d := 1; d <= depth && len(frontier) > 0; d++ {
		var next []Hop
		var err error
		if direction == Downstream {
			next, err = downstreamHops(ctx, g, frontier, relation, blueprints)
		} else {
			next, err = upstreamHops(ctx, g, frontier, relation)
		}
		if err != nil {
			return nil, err
		}
		frontier = frontier[:0:0]
		var reached []Hop
		for _, h := range next {
			if seen[h.Ref] {
				continue
			}
			seen[h.Ref] = true
			h.Depth = d
			reached = append(reached, h)
		}
		if d < depth || checkLast {
			if reached, err = keepVisible(reached, visible); err != nil {
				return nil, err
			}
		}
		for _, h := range reached {
			out = append(out, h)
			frontier = append(frontier, h.Ref)
		}
	}
	return out, nil
}

// keepVisible drops the hops to entities visible does not admit.
func keepVisible(hops []Hop, visible Visibility) ([]Hop, error) {
	if visible == nil || len(hops) == 0 {
		return hops, nil
	}
	refs := make([]Ref, len(hops))
	for i, h := range hops {
		refs[i] = h.Ref
	}
	ok, err := visible(refs)
	if err != nil {
		return nil, fmt.Errorf("walk: %w", err)
	}
	out := hops[:0]
	for i, h := range hops {
		if ok[i] {
			out = append(out, h)
		}
	}
	return out, nil
}

func upstreamHops(ctx context.Context, g Graph, frontier []Ref, relation string) ([]Hop, error) {
	refs, err := g.ReferrersOf(ctx, frontier)
	if err != nil {
		return nil, fmt.Errorf("walk upstream: %w", err)
	}
	var out []Hop
	for i, list := range refs {
		for _, r := range list {
			if relation != "" && r.Relation != relation {
				continue
			}
			out = append(out, Hop{Ref: r.From, Relation: r.Relation, Via: frontier[i]})
		}
	}
	return out, nil
}

func downstreamHops(ctx context.Context, g Graph, frontier []Ref, relation string, blueprints map[string]*Blueprint) ([]Hop, error) {
	ents, err := g.Entities(ctx, frontier)
	if err != nil {
		return nil, fmt.Errorf("walk downstream: %w", err)
	}
	var out []Hop
	for i, e := range ents {
		if e == nil {
			continue
		}
		bp := blueprints[e.Blueprint]
		if bp == nil {
			continue
		}
		for _, name := range e.RelationNames() {
			if relation != "" && name != relation {
				continue
			}
			rel, ok := bp.Relations[name]
			if !ok {
				continue
			}
			for _, id := range e.RelationTargets(name) {
				out = append(out, Hop{Ref: Ref{Blueprint: rel.Target, Identifier: id}, Relation: name, Via: frontier[i]})
			}
		}
	}
	return out, nil
}
