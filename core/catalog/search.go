package catalog

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Search limits.
const (
	DefaultSearchLimit = 100
	MaxSearchLimit     = 1000
)

// SearchQuery is a search request (DESIGN §4).
type SearchQuery struct {
	Query  *Rule       `json:"query"`
	Limit  int         `json:"limit,omitempty"`
	Cursor *string     `json:"cursor,omitempty"`
	Sort   []SortField `json:"sort,omitempty"`
}

// SearchPage is one page of search results; Next is "" on the last page.
type SearchPage struct {
	Entities []*Entity `json:"entities"`
	Next     string    `json:"next"`
	Total    int       `json:"total"`
}

// Search runs a rule query over the whole catalog. Rule values may use the
// "$me" placeholders (MeValue, MyTeamsValue); entities the actor may not
// read are left out, also from the total.
func (s *Service) Search(ctx context.Context, q SearchQuery) (*SearchPage, error) {
	expandMe(q.Query, ActorFrom(ctx))
	offset, err := s.validateSearch(&q)
	if err != nil {
		return nil, err
	}
	bps, err := s.blueprintMap(ctx)
	if err != nil {
		return nil, err
	}
	computed := computedProperties(bps)
	needsComputed := false
	q.Query.Walk(func(r *Rule) { needsComputed = needsComputed || computed[r.Property] })
	for _, f := range q.Sort {
		needsComputed = needsComputed || computed[f.Property]
	}
	visible := s.newReadFilter(ctx, bps)
	res, err := s.store.Search(ctx, SearchRequest{
		Query:      q.Query,
		Computed:   computed,
		Restricted: visible != nil,
		Visible:    visible.visibility(),
		Match:      s.matcher(ctx, q.Query, bps, needsComputed, visible),
		Sort:       q.Sort,
		SortValue:  levelRanks(q.Sort, bps),
		Offset:     offset,
		Limit:      q.Limit,
	})
	if err != nil {
		return nil, err
	}
	if err := s.decorateWith(ctx, res.Entities, bps); err != nil {
		return nil, err
	}
	page := &SearchPage{Entities: res.Entities, Total: res.Total}
	if page.Entities == nil {
		page.Entities = []*Entity{}
	}
	if end := offset + len(res.Entities); end < res.Total && len(res.Entities) > 0 {
		page.Next = encodeCursor(end)
	}
	return page, nil
}

func (s *Service) validateSearch(q *SearchQuery) (int, error) {
	var vs violations
	if q.Query == nil {
		q.Query = &Rule{Combinator: "and"}
	}
	if err := q.Query.Validate("/query"); err != nil {
		return 0, err
	}
	switch {
	case q.Limit == 0:
		q.Limit = DefaultSearchLimit
	case q.Limit < 0 || q.Limit > MaxSearchLimit:
		vs.add("/limit", "must be between 1 and %d", MaxSearchLimit)
	}
	offset := 0
	if q.Cursor != nil && *q.Cursor != "" {
		var ok bool
		if offset, ok = decodeCursor(*q.Cursor); !ok {
			vs.add("/cursor", "not a cursor this API returned")
		}
	}
	for i, f := range q.Sort {
		if f.Property == "" {
			vs.add(pointer("sort", strconv.Itoa(i), "property"), "required")
		} else if strings.HasPrefix(f.Property, "$") && !isQueryableMeta(f.Property) {
			vs.add(pointer("sort", strconv.Itoa(i), "property"), "unknown meta-property %q", f.Property)
		}
		if f.Order != "" && f.Order != "asc" && f.Order != "desc" {
			vs.add(pointer("sort", strconv.Itoa(i), "order"), "must be asc or desc")
		}
	}
	return offset, vs.err("invalid search")
}

const cursorPrefix = "o:"

func encodeCursor(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.Itoa(offset)))
}

func decodeCursor(c string) (int, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || !strings.HasPrefix(string(raw), cursorPrefix) {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimPrefix(string(raw), cursorPrefix))
	return n, err == nil && n >= 0
}

// Related lists the entities reachable from ref through relations, in one
// direction or both, up to depth hops, through entities the actor may
// read only.
func (s *Service) Related(ctx context.Context, ref Ref, direction string, depth int) (map[string][]Hop, error) {
	if depth < 1 || depth > MaxDepth {
		return nil, &ValidationError{Message: "invalid depth", Violations: []Violation{{Path: "/depth", Message: fmt.Sprintf("must be between 1 and %d", MaxDepth)}}}
	}
	if _, err := s.GetEntity(ctx, ref); err != nil {
		return nil, err
	}
	bps, err := s.blueprintMap(ctx)
	if err != nil {
		return nil, err
	}
	visible := s.newReadFilter(ctx, bps).visibility()
	out := map[string][]Hop{}
	for _, dir := range []string{Upstream, Downstream} {
		if direction != "" && direction != "both" && direction != dir {
			continue
		}
		hops, err := Walk(ctx, s.store, ref, dir, "", depth, bps, visible)
		if err != nil {
			return nil, err
		}
		if hops == nil {
			hops = []Hop{}
		}
		out[dir] = hops
	}
	return out, nil
}

// matcher is the final verdict of a search over stored candidates: the
// actor may read the entity, and it matches query (decorated first when
// decorate says computed properties are involved).
func (s *Service) matcher(ctx context.Context, query *Rule, bps map[string]*Blueprint, decorate bool, visible *readFilter) func(*Entity, Related) bool {
	now := s.now()
	return func(e *Entity, related Related) bool {
		if !visible.allows(e) {
			return false
		}
		if decorate {
			if err := s.decorateWith(ctx, []*Entity{e}, bps); err != nil {
				return false
			}
		}
		return Match(query, e, e.Properties, now, related)
	}
}

// levelRanks sorts "scorecards.<id>.level" by the level's rank in the
// scorecard (Basic < Bronze < Silver < Gold, the scorecard's own order),
// not alphabetically; nil when no sort field is a level.
func levelRanks(sort []SortField, bps map[string]*Blueprint) func(*Entity, string) any {
	if !slices.ContainsFunc(sort, func(f SortField) bool { _, ok := scorecardLevelProperty(f.Property); return ok }) {
		return nil
	}
	return func(e *Entity, prop string) any {
		id, isLevel := scorecardLevelProperty(prop)
		if !isLevel {
			v, _ := Lookup(e, e.Properties, prop)
			return v
		}
		bp, level := bps[e.Blueprint], ScorecardLevelOf(e, id)
		if bp == nil || bp.Scorecards[id] == nil || level == "" {
			return nil // ungraded: last, as any missing value
		}
		if rank := LevelRank(bp.Scorecards[id].LevelsOrDefault(), level); rank >= 0 {
			return float64(rank)
		}
		return nil
	}
}
