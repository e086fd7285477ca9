package definitions

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/internal/errkind"
)

// Reader returns the current state of a definition of one kind as the
// API shows it (any value that encodes to that JSON), or an error of
// kind errkind.NotFound when it does not exist.
type Reader func(ctx context.Context, id string) (any, error)

// Service keeps the ledger and finds drift.
type Service struct {
	store Store
	read  map[Kind]Reader
	now   func() time.Time
}

// NewService returns a Service over store, reading current definitions
// with read (a kind without a reader never drifts).
func NewService(store Store, read map[Kind]Reader) *Service {
	return &Service{store: store, read: read, now: time.Now}
}

// Applied is what one apply of a set did: the definitions it wrote or
// found unchanged, and those its prune deleted.
type Applied struct {
	Set         string       `json:"set"`
	Definitions []AppliedDef `json:"definitions"`
	Deleted     []Ref        `json:"deleted"`
}

// AppliedDef is one definition an apply wrote or found as its files say.
type AppliedDef struct {
	Kind Kind   `json:"kind"`
	ID   string `json:"id"`
	// Created says this apply created it.
	Created bool `json:"created"`
	// Spec is the definition as the files say (normalised again here).
	Spec map[string]any `json:"spec"`
}

// Record writes what an apply did to the ledger, as applied by actor.
// A definition keeps "created" while the same set applies it; another
// set applying it takes it over without it.
func (s *Service) Record(ctx context.Context, in Applied) error {
	if err := checkApplied(in); err != nil {
		return err
	}
	old, err := s.index(ctx)
	if err != nil {
		return err
	}
	now, by := s.now().UTC(), catalog.ActorFrom(ctx).ID
	recs := make([]Record, 0, len(in.Definitions))
	for _, d := range in.Definitions {
		var bp *catalog.Blueprint
		if d.Kind == Entity {
			bp = s.blueprint(ctx, d.Spec)
		}
		spec, err := Normalize(d.Kind, d.Spec, bp)
		if err != nil {
			return err
		}
		r := Record{Kind: d.Kind, ID: d.ID, Set: in.Set, Created: d.Created, Hash: Hash(spec), Spec: spec, AppliedAt: now, AppliedBy: by}
		if prev, ok := old[r.Key()]; ok && prev.Set == in.Set && prev.Created {
			r.Created = true
		}
		recs = append(recs, r)
	}
	if err := s.store.Put(ctx, recs); err != nil {
		return err
	}
	return s.store.Delete(ctx, in.Deleted)
}

func checkApplied(in Applied) error {
	var vs []catalog.Violation
	if in.Set == "" {
		vs = append(vs, catalog.Violation{Path: "/set", Message: "required"})
	}
	for i, d := range in.Definitions {
		if Rank(d.Kind) < 0 {
			vs = append(vs, catalog.Violation{Path: fmt.Sprintf("/definitions/%d/kind", i), Message: fmt.Sprintf("unknown kind %q", d.Kind)})
		}
		if d.ID == "" {
			vs = append(vs, catalog.Violation{Path: fmt.Sprintf("/definitions/%d/id", i), Message: "required"})
		}
	}
	if len(vs) > 0 {
		return &catalog.ValidationError{Message: "invalid apply record", Violations: vs}
	}
	return nil
}

// List returns the ledger's records, of set only unless set is empty.
func (s *Service) List(ctx context.Context, set string) ([]Record, error) {
	all, err := s.store.List(ctx)
	if err != nil {
		return nil, err
	}
	out := []Record{}
	for _, r := range all {
		if set == "" || r.Set == set {
			out = append(out, r)
		}
	}
	return out, nil
}

func (s *Service) index(ctx context.Context) (map[string]Record, error) {
	all, err := s.store.List(ctx)
	if err != nil {
		return nil, err
	}
	m := make(map[string]Record, len(all))
	for _, r := range all {
		m[r.Key()] = r
	}
	return m, nil
}

// Drift is a definition changed outside of code since its set last
// applied it.
type Drift struct {
	Kind Kind   `json:"kind"`
	ID   string `json:"id"`
	Set  string `json:"set"`
	// State is "changed" or "deleted".
	State     string    `json:"state"`
	Changes   []Change  `json:"changes,omitempty"`
	AppliedAt time.Time `json:"appliedAt"`
}

// Drift states.
const (
	Changed = "changed"
	Deleted = "deleted"
)

// Drift lists the ledger's definitions (of set only, unless empty) whose
// current normalised state differs from what was last applied, with what
// changed (from the applied value to the current one).
func (s *Service) Drift(ctx context.Context, set string) ([]Drift, error) {
	recs, err := s.List(ctx, set)
	if err != nil {
		return nil, err
	}
	out := []Drift{}
	for _, r := range recs {
		read := s.read[r.Kind]
		if read == nil {
			continue
		}
		cur, err := read(ctx, r.ID)
		if isNotFound(err) {
			out = append(out, Drift{Kind: r.Kind, ID: r.ID, Set: r.Set, State: Deleted, AppliedAt: r.AppliedAt})
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("drift of %s %s: %w", r.Kind, r.ID, err)
		}
		var bp *catalog.Blueprint
		if r.Kind == Entity {
			bp = s.blueprint(ctx, r.Spec)
		}
		now, err := Normalize(r.Kind, cur, bp)
		if err != nil {
			return nil, err
		}
		Align(r.Kind, r.Spec, now)
		if Hash(now) != r.Hash {
			out = append(out, Drift{Kind: r.Kind, ID: r.ID, Set: r.Set, State: Changed, Changes: Diff(r.Spec, now), AppliedAt: r.AppliedAt})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return Rank(out[i].Kind) < Rank(out[j].Kind)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// blueprint is an entity's blueprint as the Blueprint reader shows it
// (nil when it cannot be read: no computed properties are dropped).
func (s *Service) blueprint(ctx context.Context, spec map[string]any) *catalog.Blueprint {
	id, _ := spec["blueprint"].(string)
	read := s.read[Blueprint]
	if id == "" || read == nil {
		return nil
	}
	v, err := read(ctx, id)
	if err != nil {
		return nil
	}
	bp, _ := v.(*catalog.Blueprint)
	return bp
}

func isNotFound(err error) bool {
	var k interface{ Kind() errkind.Kind }
	return err != nil && errors.As(err, &k) && k.Kind() == errkind.NotFound
}
