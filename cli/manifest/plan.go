package manifest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/core/definitions"
	"github.com/portico-dev/portico/internal/client"
)

// API is the portal's HTTP API (client.Client).
type API interface {
	Do(ctx context.Context, method, path string, in, out any) error
}

// Op is what applying a step does.
type Op string

// The operations of a plan.
const (
	Create    Op = "create"
	Update    Op = "update"
	Unchanged Op = "unchanged"
	Delete    Op = "delete"
)

// Step is one definition's part of a plan.
type Step struct {
	Op   Op
	Kind definitions.Kind
	ID   string
	Doc  *Document // nil for a deletion
	// Changes are an update's differences, from the portal's value to
	// the files'.
	Changes []definitions.Change
	tokenID string // a token's id on the portal (update, delete)
}

// Name is "<Kind> <id>".
func (s *Step) Name() string { return string(s.Kind) + " " + s.ID }

// Plan is what applying documents to a portal would do, in apply order.
type Plan struct {
	Set   string
	Steps []*Step
	// Kept lists what prune leaves in place though the files no longer
	// have it (a kind the API cannot delete), with why.
	Kept []string
}

// Count is how many steps do op.
func (p *Plan) Count(op Op) int {
	n := 0
	for _, s := range p.Steps {
		if s.Op == op {
			n++
		}
	}
	return n
}

// Changes is whether applying the plan would change anything.
func (p *Plan) Changes() bool { return len(p.Steps) > p.Count(Unchanged) }

// portal reads the portal for planning and validation (a Lookup).
type portal struct {
	api API
	bps map[string]*catalog.Blueprint
}

var _ Lookup = (*portal)(nil)

// NewLookup returns a Lookup over the portal's API.
func NewLookup(api API) Lookup { return &portal{api: api, bps: map[string]*catalog.Blueprint{}} }

func (p *portal) Blueprint(ctx context.Context, id string) (*catalog.Blueprint, error) {
	if bp, ok := p.bps[id]; ok {
		return bp, nil
	}
	var bp catalog.Blueprint
	err := p.api.Do(ctx, http.MethodGet, itemPath(definitions.Blueprint, id), nil, &bp)
	if isNotFound(err) {
		p.bps[id] = nil
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	p.bps[id] = &bp
	return &bp, nil
}

func (p *portal) Exists(ctx context.Context, kind definitions.Kind, id string) (bool, error) {
	cur, _, err := p.current(ctx, kind, id)
	return cur != nil, err
}

// current is the portal's definition (nil: none) and, for a token, its id.
func (p *portal) current(ctx context.Context, kind definitions.Kind, id string) (map[string]any, string, error) {
	if kind == definitions.Token {
		user, name, _ := strings.Cut(id, "/")
		var out struct {
			Tokens []map[string]any `json:"tokens"`
		}
		if err := p.api.Do(ctx, http.MethodGet, "/api/v1/tokens?user="+url.QueryEscape(user), nil, &out); err != nil {
			return nil, "", fmt.Errorf("tokens of %s: %w", user, err)
		}
		for _, t := range out.Tokens {
			if t["name"] == name {
				tid, _ := t["id"].(string)
				return t, tid, nil
			}
		}
		return nil, "", nil
	}
	var out map[string]any
	err := p.api.Do(ctx, http.MethodGet, itemPath(kind, id), nil, &out)
	if isNotFound(err) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("%s %s: %w", kind, id, err)
	}
	return out, "", nil
}

func isNotFound(err error) bool {
	var ce *client.Error
	return errors.As(err, &ce) && ce.Status == http.StatusNotFound
}

// itemPath is the API path of one definition.
func itemPath(kind definitions.Kind, id string) string {
	seg := url.PathEscape
	a, b, _ := strings.Cut(id, "/")
	switch kind {
	case definitions.Blueprint:
		return "/api/v1/blueprints/" + seg(id)
	case definitions.Workflow:
		return "/api/v1/workflows/" + seg(id)
	case definitions.Action:
		return "/api/v1/actions/" + seg(id)
	case definitions.Integration:
		return "/api/v1/integrations/" + seg(id)
	case definitions.Scorecard:
		return "/api/v1/blueprints/" + seg(a) + "/scorecards/" + seg(b)
	case definitions.Automation:
		return "/api/v1/automations/" + seg(id)
	case definitions.Initiative:
		return "/api/v1/initiatives/" + seg(id)
	case definitions.Entity:
		return "/api/v1/blueprints/" + seg(a) + "/entities/" + seg(b)
	}
	return ""
}

// Build plans documents (validated) against the portal: what to create,
// what to update (field by field), what is already as the files say and,
// with prune, what set created earlier that the files no longer have.
func Build(ctx context.Context, api API, docs []*Document, set string, prune bool) (*Plan, error) {
	p := &portal{api: api, bps: map[string]*catalog.Blueprint{}}
	plan := &Plan{Set: set}
	byBlueprint := map[string]*catalog.Blueprint{}
	for _, d := range docs {
		if d.Kind == definitions.Blueprint {
			var bp catalog.Blueprint
			if _, _, ok := decodeStrict(d.Spec, &bp, ""); ok {
				byBlueprint[bp.Identifier] = &bp
			}
		}
	}
	for _, d := range docs {
		cur, tokenID, err := p.current(ctx, d.Kind, d.ID())
		if err != nil {
			return nil, err
		}
		s := &Step{Kind: d.Kind, ID: d.ID(), Doc: d, tokenID: tokenID}
		plan.Steps = append(plan.Steps, s)
		if cur == nil {
			s.Op = Create
			continue
		}
		var bp *catalog.Blueprint
		if d.Kind == definitions.Entity {
			id, _ := d.Spec["blueprint"].(string)
			if bp = byBlueprint[id]; bp == nil {
				if bp, err = p.Blueprint(ctx, id); err != nil {
					return nil, err
				}
			}
		}
		now, err := definitions.Normalize(d.Kind, cur, bp)
		if err != nil {
			return nil, err
		}
		definitions.Align(d.Kind, d.Normalised, now)
		if s.Changes = definitions.Diff(now, d.Normalised); len(s.Changes) == 0 {
			s.Op = Unchanged
		} else {
			s.Op = Update
		}
	}
	if prune {
		if err := plan.prune(ctx, p, docs); err != nil {
			return nil, err
		}
	}
	plan.order()
	return plan, nil
}

// prune adds the deletions of what set created that docs no longer have.
func (plan *Plan) prune(ctx context.Context, p *portal, docs []*Document) error {
	var out struct {
		Definitions []definitions.Record `json:"definitions"`
	}
	if err := p.api.Do(ctx, http.MethodGet, "/api/v1/definitions?set="+url.QueryEscape(plan.Set), nil, &out); err != nil {
		return fmt.Errorf("the ledger of set %s: %w", plan.Set, err)
	}
	have := map[string]bool{}
	for _, d := range docs {
		have[string(d.Kind)+"|"+d.ID()] = true
	}
	for _, r := range out.Definitions {
		if !r.Created || r.Set != plan.Set || have[r.Key()] {
			continue
		}
		if r.Kind == definitions.Workflow {
			plan.Kept = append(plan.Kept, fmt.Sprintf("Workflow %s: the API cannot delete workflows", r.ID))
			continue
		}
		cur, tokenID, err := p.current(ctx, r.Kind, r.ID)
		if err != nil {
			return err
		}
		s := &Step{Op: Delete, Kind: r.Kind, ID: r.ID, tokenID: tokenID}
		if cur == nil {
			s.Op = Unchanged // already gone: only the ledger forgets it
		}
		plan.Steps = append(plan.Steps, s)
	}
	return nil
}

// order sorts the steps for applying: writes by kind (blueprints by the
// relations between them), then deletions in the reverse order.
func (plan *Plan) order() {
	bpRank := blueprintOrder(plan.Steps)
	rank := func(s *Step) (int, int, string) {
		k := definitions.Rank(s.Kind)
		if s.Op == Delete {
			return 1, -k, s.ID
		}
		return 0, k, s.ID
	}
	sort.SliceStable(plan.Steps, func(i, j int) bool {
		a, b := plan.Steps[i], plan.Steps[j]
		ad, ak, aid := rank(a)
		bd, bk, bid := rank(b)
		if ad != bd {
			return ad < bd
		}
		if ak != bk {
			return ak < bk
		}
		if a.Kind == definitions.Blueprint && a.Op != Delete && bpRank[aid] != bpRank[bid] {
			return bpRank[aid] < bpRank[bid]
		}
		return aid < bid
	})
}

// blueprintOrder ranks the blueprints to create or update so that a
// relation's target comes before the blueprint relating to it when both
// are written (cycles keep their lexical order: see cyclic).
func blueprintOrder(steps []*Step) map[string]int {
	deps := blueprintDeps(steps)
	ids := sortedKeys(deps)
	rank := map[string]int{}
	visiting := map[string]bool{}
	var visit func(string)
	visit = func(id string) {
		if _, done := rank[id]; done || visiting[id] {
			return
		}
		visiting[id] = true
		for _, t := range deps[id] {
			visit(t)
		}
		visiting[id] = false
		rank[id] = len(rank)
	}
	for _, id := range ids {
		visit(id)
	}
	return rank
}

// blueprintDeps maps each blueprint being created or updated to the
// blueprints being created that it targets (relations, aggregations).
func blueprintDeps(steps []*Step) map[string][]string {
	created := map[string]bool{}
	deps := map[string][]string{}
	for _, s := range steps {
		if s.Kind == definitions.Blueprint && (s.Op == Create || s.Op == Update) {
			deps[s.ID] = nil
			if s.Op == Create {
				created[s.ID] = true
			}
		}
	}
	for _, s := range steps {
		if _, ok := deps[s.ID]; !ok || s.Kind != definitions.Blueprint {
			continue
		}
		for _, t := range targets(s.Doc.Spec) {
			if created[t] && t != s.ID {
				deps[s.ID] = append(deps[s.ID], t)
			}
		}
		slices.Sort(deps[s.ID])
	}
	return deps
}

// targets are the blueprints a blueprint's spec refers to.
func targets(spec map[string]any) []string {
	var out []string
	for _, field := range []string{"relations", "aggregationProperties"} {
		m, _ := spec[field].(map[string]any)
		for _, k := range sortedKeys(m) {
			o, _ := m[k].(map[string]any)
			if t, _ := o["target"].(string); t != "" {
				out = append(out, t)
			}
		}
	}
	return out
}

// cyclic lists the blueprints to create whose targets form a cycle among
// them: they are first written without what refers to other blueprints.
func cyclic(steps []*Step) map[string]bool {
	deps := blueprintDeps(steps)
	out := map[string]bool{}
	for id := range deps {
		// id is on a cycle when it can reach itself.
		seen := map[string]bool{}
		stack := slices.Clone(deps[id])
		for len(stack) > 0 {
			n := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if n == id {
				out[id] = true
				break
			}
			if !seen[n] {
				seen[n] = true
				stack = append(stack, deps[n]...)
			}
		}
	}
	return out
}
