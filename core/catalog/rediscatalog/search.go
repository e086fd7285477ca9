package rediscatalog

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/catalog"
)

// Search plans a query per blueprint: index-backed rules (equality, in,
// ranges, prefixes on stored properties and meta-properties, relatedTo)
// select candidates from the secondary indexes in one pipelined round trip;
// every candidate is then checked with the full rule (req.Match), so an index
// only ever narrows. When every rule was answered exactly by an index and the
// sort needs no document, only the requested page is fetched.
func (s *Store) Search(ctx context.Context, req catalog.SearchRequest) (*catalog.SearchResult, error) {
	sc, err := s.scopeOf(ctx, req.Query, req.Visible)
	if err != nil {
		return nil, err
	}
	exact := true
	var refs []catalog.Ref
	for _, bp := range sc.all {
		p := sc.planner(s, bp, req.Computed)
		c, err := p.run(ctx, req.Query)
		if err != nil {
			return nil, err
		}
		ids := c.sorted()
		if c.all {
			if ids, err = s.rdb.ZRange(ctx, s.keys.ids(bp.Identifier), 0, -1).Result(); err != nil {
				return nil, fmt.Errorf("search %s: %w", bp.Identifier, err)
			}
		}
		exact = exact && c.exact
		for _, id := range ids {
			refs = append(refs, catalog.Ref{Blueprint: bp.Identifier, Identifier: id})
		}
	}
	if exact && !req.Restricted {
		if page, ok, err := s.pageWithoutDocuments(ctx, refs, req, sc.related); ok || err != nil {
			return page, err
		}
	}
	return s.pageWithDocuments(ctx, refs, req, sc.related)
}

// pageWithoutDocuments orders refs by identifier or a numeric meta index and
// fetches only the page. ok is false when the sort needs documents.
func (s *Store) pageWithoutDocuments(ctx context.Context, refs []catalog.Ref, req catalog.SearchRequest, related catalog.Related) (*catalog.SearchResult, bool, error) {
	var desc bool
	var scoreProp string
	switch len(req.Sort) {
	case 0:
	case 1:
		desc = req.Sort[0].Order == "desc"
		switch metaIndex(req.Sort[0].Property) {
		case catalog.IndexedAsIdentifier:
		case catalog.IndexedAsTime:
			scoreProp = req.Sort[0].Property
		default:
			return nil, false, nil
		}
	default:
		return nil, false, nil
	}
	var scores map[catalog.Ref]float64
	if scoreProp != "" {
		var err error
		if scores, err = s.scores(ctx, refs, scoreProp); err != nil {
			return nil, true, err
		}
	}
	sort.SliceStable(refs, func(i, j int) bool {
		a, b := refs[i], refs[j]
		if scores != nil && scores[a] != scores[b] {
			return (scores[a] < scores[b]) != desc
		}
		if len(req.Sort) == 1 && scoreProp == "" && a.Identifier != b.Identifier {
			return (a.Identifier < b.Identifier) != desc // sort by $identifier
		}
		// Same tie-break as sortEntities: blueprint, then identifier.
		if a.Blueprint != b.Blueprint {
			return a.Blueprint < b.Blueprint
		}
		return a.Identifier < b.Identifier
	})
	total := len(refs)
	page := window(refs, req.Offset, req.Limit)
	ents, err := getEntities(ctx, s.rdb, s.keys, page)
	if err != nil {
		return nil, true, err
	}
	out := make([]*catalog.Entity, 0, len(ents))
	for _, e := range ents {
		// An exact plan admits only matching entities; the check guards
		// against an entity deleted between the index read and the fetch.
		if e != nil && req.Match(e, related) {
			out = append(out, e)
		}
	}
	return &catalog.SearchResult{Entities: out, Total: total}, true, nil
}

func (s *Store) scores(ctx context.Context, refs []catalog.Ref, prop string) (map[catalog.Ref]float64, error) {
	byBP := map[string][]string{}
	for _, r := range refs {
		byBP[r.Blueprint] = append(byBP[r.Blueprint], r.Identifier)
	}
	pipe := s.rdb.Pipeline()
	cmds := map[string]*redis.FloatSliceCmd{}
	for bp, ids := range byBP {
		cmds[bp] = pipe.ZMScore(ctx, s.keys.numIndex(bp, prop), ids...)
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, fmt.Errorf("sort by %s: %w", prop, err)
	}
	out := make(map[catalog.Ref]float64, len(refs))
	for bp, ids := range byBP {
		vals := cmds[bp].Val()
		for i, id := range ids {
			if i < len(vals) {
				out[catalog.Ref{Blueprint: bp, Identifier: id}] = vals[i]
			}
		}
	}
	return out, nil
}

// pageWithDocuments fetches every candidate, keeps the matches, sorts and
// pages them.
func (s *Store) pageWithDocuments(ctx context.Context, refs []catalog.Ref, req catalog.SearchRequest, related catalog.Related) (*catalog.SearchResult, error) {
	var matched []*catalog.Entity
	const chunk = 2000
	for start := 0; start < len(refs); start += chunk {
		end := min(start+chunk, len(refs))
		ents, err := getEntities(ctx, s.rdb, s.keys, refs[start:end])
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if e != nil && req.Match(e, related) {
				matched = append(matched, e)
			}
		}
	}
	sortEntities(matched, req)
	return &catalog.SearchResult{Entities: window(matched, req.Offset, req.Limit), Total: len(matched)}, nil
}

func sortEntities(ents []*catalog.Entity, req catalog.SearchRequest) {
	value := req.SortValue
	if value == nil {
		value = func(e *catalog.Entity, p string) any { v, _ := catalog.Lookup(e, e.Properties, p); return v }
	}
	sort.SliceStable(ents, func(i, j int) bool {
		a, b := ents[i], ents[j]
		for _, f := range req.Sort {
			va, vb := value(a, f.Property), value(b, f.Property)
			if va == nil && vb == nil {
				continue
			}
			if va == nil || vb == nil {
				return vb == nil // missing values sort last either way
			}
			c, ok := catalog.CompareValues(va, vb)
			if !ok || c == 0 {
				continue
			}
			return (c < 0) != (f.Order == "desc")
		}
		if a.Blueprint != b.Blueprint {
			return a.Blueprint < b.Blueprint
		}
		return a.Identifier < b.Identifier
	})
}

func window[T any](list []T, offset, limit int) []T {
	if offset >= len(list) {
		return nil
	}
	end := len(list)
	if limit > 0 && offset+limit < end {
		end = offset + limit
	}
	return list[offset:end]
}

// resolveRelated walks the graph once for every relatedTo rule in the
// tree, within what visible admits.
func (s *Store) resolveRelated(ctx context.Context, q *catalog.Rule, bps map[string]*catalog.Blueprint, visible catalog.Visibility) (catalog.Related, error) {
	related := catalog.Related{}
	var err error
	q.Walk(func(r *catalog.Rule) {
		if err != nil || r.IsCombinator() || r.Operator != "relatedTo" {
			return
		}
		var hops []catalog.Hop
		// Every candidate is matched against the reader's visibility
		// (req.Restricted), so the last hop needs no check of its own.
		hops, err = catalog.WalkThrough(ctx, s, catalog.Ref{Blueprint: r.Blueprint, Identifier: r.Identifier}, r.Direction, r.Relation, r.Depth, bps, visible)
		set := make(map[catalog.Ref]struct{}, len(hops))
		for _, h := range hops {
			set[h.Ref] = struct{}{}
		}
		related[r] = set
	})
	return related, err
}

// ReferrersOf returns the referrers of many entities in one round trip.
func (s *Store) ReferrersOf(ctx context.Context, refs []catalog.Ref) ([][]catalog.Reference, error) {
	out := make([][]catalog.Reference, len(refs))
	if len(refs) == 0 {
		return out, nil
	}
	bps, err := s.Blueprints(ctx)
	if err != nil {
		return nil, err
	}
	kinds := map[string][]edgeKind{}
	pipe := s.rdb.Pipeline()
	cmds := make([][]*redis.StringSliceCmd, len(refs))
	for i, r := range refs {
		ks, ok := kinds[r.Blueprint]
		if !ok {
			ks = incoming(bps, r.Blueprint)
			kinds[r.Blueprint] = ks
		}
		for _, kind := range ks {
			cmds[i] = append(cmds[i], pipe.SMembers(ctx, s.keys.referrers(r.Blueprint, r.Identifier, kind.From, kind.Name)))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("referrers: %w", err)
	}
	for i, r := range refs {
		members := make([][]string, len(cmds[i]))
		for k, c := range cmds[i] {
			members[k] = c.Val()
		}
		out[i] = referrersFrom(kinds[r.Blueprint], members)
	}
	return out, nil
}

// scope is what planning a query over every blueprint needs: the
// blueprints, their changes in progress and the query's relatedTo sets.
type scope struct {
	all     []*catalog.Blueprint
	changes map[string]*catalog.BlueprintChange
	related catalog.Related
}

// scopeOf reads the blueprints and resolves q's relatedTo rules (walks
// bounded by visible).
func (s *Store) scopeOf(ctx context.Context, q *catalog.Rule, visible catalog.Visibility) (*scope, error) {
	all, changes, err := s.blueprints(ctx, true)
	if err != nil {
		return nil, err
	}
	bps := make(map[string]*catalog.Blueprint, len(all))
	for _, bp := range all {
		bps[bp.Identifier] = bp
	}
	related, err := s.resolveRelated(ctx, q, bps, visible)
	if err != nil {
		return nil, err
	}
	return &scope{all: all, changes: changes, related: related}, nil
}

// planner plans over blueprint bp of the scope.
func (sc *scope) planner(s *Store, bp *catalog.Blueprint, computed map[string]bool) *planner {
	return &planner{s: s, bp: bp, computed: computed, unsettled: unsettled(sc.changes[bp.Identifier]), related: sc.related}
}
