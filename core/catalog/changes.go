package catalog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Phases of a blueprint change in progress.
const (
	// PhaseValidating: the proposed definition (Next) is being checked
	// against every stored entity; the stored definition is still in
	// force, and writes are checked against both.
	PhaseValidating = "validating"
	// PhaseBackfilling: the definition is in force; stored entities are
	// being re-indexed from From's layout. Searches do not use the
	// indexes of Properties until it ends.
	PhaseBackfilling = "backfilling"
)

// Events about blueprint changes in progress (see BlueprintChange).
const (
	EventBackfillStarted  = "blueprint.backfill_started"
	EventBackfillProgress = "blueprint.backfill_progress"
	EventBackfillFinished = "blueprint.backfill_finished"
)

// BlueprintChange is a change of a blueprint that stored entities are
// being brought in line with. At most one is in progress per blueprint.
type BlueprintChange struct {
	ID        string `json:"id"`
	Blueprint string `json:"blueprint"`
	Phase     string `json:"phase"`
	// Next is the proposed definition and Checks why entities must be
	// checked against it, e.g. "/schema/properties/tier/maximum lowered"
	// (validating).
	Next   *Blueprint `json:"next,omitempty"`
	Checks []string   `json:"checks,omitempty"`
	// From is the definition whose index layout entities not yet
	// backfilled still have (backfilling).
	From *Blueprint `json:"from,omitempty"`
	// Properties are those being re-indexed (backfilling).
	Properties []string `json:"properties,omitempty"`
	// Entities is how many entities the blueprint had when it started.
	Entities  int       `json:"entities"`
	StartedAt time.Time `json:"startedAt"`
	Actor     string    `json:"actor,omitempty"`
}

// ChangeProgress is how far a change has come: Done of Total (entities
// for a validation, index entries for a backfill). Beat is when its
// worker last reported.
type ChangeProgress struct {
	Done  int       `json:"done"`
	Total int       `json:"total"`
	Beat  time.Time `json:"-"`
}

// ChangeStatus is a change in progress as GET /blueprints/{bp} shows it.
type ChangeStatus struct {
	ID         string    `json:"id"`
	Phase      string    `json:"phase"`
	Properties []string  `json:"properties,omitempty"`
	Checks     []string  `json:"checks,omitempty"`
	Done       int       `json:"done"`
	Total      int       `json:"total"`
	StartedAt  time.Time `json:"startedAt"`
}

// Tuning of changes in progress.
const (
	// maxOffenders bounds how many invalidated entities a refused change
	// lists.
	maxOffenders = 100
	// maxRecheck bounds how many offenders found while scanning are read
	// again when the change is applied (they may have been fixed since);
	// beyond it the change is refused as scanned.
	maxRecheck = 1000
	// scanChunk is how many entities a validation reads at a time.
	scanChunk = 500
	// backfillChunk is how many index entries one backfill transaction
	// moves.
	backfillChunk = 500
	// progressEvery is how often a validation reports its progress
	// (which also tells it whether it was abandoned).
	progressEvery = 250 * time.Millisecond
	// staleAfter is how long a validation may go without reporting
	// progress before another change may abandon it (its process died).
	staleAfter = time.Minute
)

// beginChange decides what a replacement of existing by next needs. When
// stored entities must be checked, it starts a validation in tx and
// returns it; otherwise the change can be applied at once (nil).
func (s *Service) beginChange(ctx context.Context, tx Tx, existing, next *Blueprint) (*BlueprintChange, error) {
	cur, err := tx.Change(ctx, existing.Identifier)
	if err != nil {
		return nil, err
	}
	if cur != nil && cur.Phase == PhaseValidating {
		return nil, fmt.Errorf("%w: blueprint %s: another change is being validated (started %s)", ErrConflict, existing.Identifier, cur.StartedAt.Format(time.RFC3339))
	}
	needed, reasons := entityCheck(existing, next)
	if cur != nil && (needed || len(layoutChanges(existing, next)) > 0) {
		// One change at a time touches the entities.
		return nil, fmt.Errorf("%w: blueprint %s: its entities are still being re-indexed for an earlier change (GET the blueprint for progress)", ErrConflict, existing.Identifier)
	}
	if !needed {
		return nil, nil
	}
	n, err := tx.EntityCount(ctx, existing.Identifier)
	if err != nil || n == 0 {
		return nil, err
	}
	c := &BlueprintChange{
		ID: newChangeID(), Blueprint: existing.Identifier, Phase: PhaseValidating,
		Next: next, Checks: reasons, Entities: n, StartedAt: s.timestamp(), Actor: ActorFrom(ctx).ID,
	}
	tx.PutChange(c)
	return c, nil
}

// applyChange puts next in place of existing. When it moves an index
// layout and entities exist, a backfill starts (RunChanges carries it;
// the caller wakes it once the transaction is applied).
func (s *Service) applyChange(ctx context.Context, tx Tx, existing, next *Blueprint) error {
	if moved := layoutChanges(existing, next); len(moved) > 0 {
		n, err := tx.EntityCount(ctx, existing.Identifier)
		if err != nil {
			return err
		}
		if n > 0 {
			c := &BlueprintChange{
				ID: newChangeID(), Blueprint: existing.Identifier, Phase: PhaseBackfilling,
				From: existing, Properties: moved, Entities: n, StartedAt: s.timestamp(), Actor: ActorFrom(ctx).ID,
			}
			tx.PutChange(c)
			tx.Emit(s.event(ctx, EventBackfillStarted, existing.Identifier, "", nil, c.status(ChangeProgress{})))
		}
	}
	tx.PutBlueprint(next, s.event(ctx, EventBlueprintUpdated, next.Identifier, "", existing, next))
	return nil
}

// validateChange streams every stored entity of the blueprint through the
// proposed definition, then applies the change in a transaction that
// re-reads whatever could have become (or stopped being) an offender
// meanwhile: those the scan found and those written since it started
// (writes record them, see checkPending). Either the change is applied or
// it is refused with the offenders listed.
func (s *Service) validateChange(ctx context.Context, old *Blueprint, c *BlueprintChange, next *CompiledBlueprint) (out *Blueprint, err error) {
	ended := false // by the transaction that applies or refuses it
	defer func() {
		if !ended {
			s.dropChange(c)
		}
	}()
	var scanned offenders
	done := 0
	pace := newPacer(scanRate)
	var reported time.Time
	only, probe := scanScope(c)
	if probe == nil {
		probe = next
	}
	check := func(ents []*Entity) error {
		for _, e := range ents {
			// A scanned entity is this scan's own copy: no need to copy it
			// before ValidateEntity normalises it.
			if problems := changeProblems(old, probe, e); len(problems) > 0 {
				scanned.add(e.Identifier, problems)
			}
		}
		done += len(ents)
		if err := pace.rest(ctx, len(ents)); err != nil {
			return err
		}
		if time.Since(reported) < progressEvery {
			return nil
		}
		reported = time.Now()
		return s.store.ChangeProgressed(ctx, old.Identifier, c.ID, ChangeProgress{Done: done, Total: max(done, c.Entities)})
	}
	// The scan keeps a core busy: in the background (low priority), so
	// that requests go first.
	s.background(func() { err = s.store.ScanEntities(ctx, old.Identifier, only, scanChunk, check) })
	if err != nil {
		return nil, fmt.Errorf("validate change of %s: %w", old.Identifier, err)
	}
	var refused error
	err = s.store.Update(ctx, func(tx Tx) error {
		out, refused = nil, nil
		cur, err := tx.Change(ctx, old.Identifier)
		if err != nil {
			return err
		}
		if cur == nil || cur.ID != c.ID {
			return fmt.Errorf("%w: blueprint %s: the change was abandoned while being validated", ErrConflict, old.Identifier)
		}
		existing, err := tx.Blueprint(ctx, old.Identifier)
		if err != nil {
			return err
		}
		found, err := s.recheck(ctx, tx, old, next, &scanned)
		if err != nil {
			return err
		}
		tx.DeleteChange(old.Identifier)
		if found.count > 0 {
			refused = found.err(old.Identifier)
			return nil
		}
		bp := *c.Next
		if !bp.UpdatedAt.After(existing.UpdatedAt) {
			bp.UpdatedAt = existing.UpdatedAt.Add(time.Microsecond)
		}
		out = &bp
		// Scorecards defined while it was validated are kept.
		return s.applyDefinition(ctx, tx, existing, &bp)
	})
	if err != nil {
		return nil, err
	}
	ended = true
	return out, refused
}

// scanScope returns what a validation's scan reads of each entity and the
// definition to check that against: when every check is about named
// properties and relations, only those (so a scan decodes a few values,
// not whole entities); else whole entities (nil, nil). An entity valid
// under old fails next exactly where the checks point, so both verdicts
// agree.
func scanScope(c *BlueprintChange) (*Projection, *CompiledBlueprint) {
	only := checkScope(c.Checks)
	if only == nil {
		return nil, nil
	}
	probe, err := CompileBlueprint(only.only(c.Next))
	if err != nil {
		return nil, nil
	}
	return only, probe
}

// recheck returns the offenders as they are now: with few enough found by
// the scan, those and the ones written during it are read again (watched);
// with many, the scan's verdict stands.
func (s *Service) recheck(ctx context.Context, tx Tx, old *Blueprint, next *CompiledBlueprint, scanned *offenders) (*offenders, error) {
	if scanned.count > maxRecheck {
		return scanned, nil
	}
	written, err := tx.Offenders(ctx, old.Identifier)
	if err != nil {
		return nil, err
	}
	ids := append(slices.Clone(scanned.ids), written...)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	refs := make([]Ref, len(ids))
	for i, id := range ids {
		refs[i] = Ref{Blueprint: old.Identifier, Identifier: id}
	}
	ents, err := tx.Entities(ctx, refs)
	if err != nil {
		return nil, err
	}
	found := &offenders{}
	for _, e := range ents {
		if e == nil {
			continue
		}
		if problems := changeProblems(old, next, e); len(problems) > 0 {
			found.add(e.Identifier, problems)
		}
	}
	return found, nil
}

// checkPending records, during a validation of blueprint bp's next
// definition, an entity being written that it would refuse: the change
// reads it again before it is applied.
func (s *Service) checkPending(ctx context.Context, tx Tx, bp *Blueprint, e *Entity) error {
	c, err := tx.Change(ctx, bp.Identifier)
	if err != nil || c == nil || c.Phase != PhaseValidating {
		return err
	}
	next, err := s.compileNext(c)
	if err != nil {
		return err
	}
	if len(changeProblems(bp, next, e.copy())) > 0 {
		tx.AddOffender(bp.Identifier, e.Identifier)
	}
	return nil
}

// compileNext returns the compiled proposed definition of a validation,
// cached by change.
func (s *Service) compileNext(c *BlueprintChange) (*CompiledBlueprint, error) {
	s.mu.Lock()
	e, ok := s.compiledNext[c.Blueprint]
	s.mu.Unlock()
	if ok && e.id == c.ID {
		return e.c, nil
	}
	comp, err := CompileBlueprint(c.Next)
	if err != nil {
		return nil, fmt.Errorf("compile proposed blueprint %s: %w", c.Blueprint, err)
	}
	s.mu.Lock()
	s.compiledNext[c.Blueprint] = compiledChange{id: c.ID, c: comp}
	s.mu.Unlock()
	return comp, nil
}

type compiledChange struct {
	id string
	c  *CompiledBlueprint
}

// changeProblems returns why entity e (stored under old) would not be
// valid under next. It normalises e in place.
func changeProblems(old *Blueprint, next *CompiledBlueprint, e *Entity) []Violation {
	var problems []Violation
	var verr *ValidationError
	if err := next.ValidateEntity(e); errors.As(err, &verr) {
		problems = verr.Violations
	}
	for _, name := range sortedKeys(old.Relations) {
		rel := old.Relations[name]
		newRel, ok := next.Blueprint.Relations[name]
		if ok && newRel.Target != rel.Target && len(e.RelationTargets(name)) > 0 {
			problems = append(problems, Violation{Path: pointer("relations", name), Message: fmt.Sprintf("points at %s entities; the new target is %s", rel.Target, newRel.Target)})
		}
	}
	return problems
}

// offenders collects the entities a change would invalidate: all of their
// identifiers (up to maxRecheck+1) and the violations of the first
// maxOffenders.
type offenders struct {
	count int
	ids   []string
	vs    violations
}

func (o *offenders) add(id string, problems []Violation) {
	o.count++
	if len(o.ids) <= maxRecheck {
		o.ids = append(o.ids, id)
	}
	if o.count > maxOffenders {
		return
	}
	for _, p := range problems {
		o.vs.add(pointer("entities", id)+p.Path, "%s", p.Message)
	}
}

func (o *offenders) err(bp string) error {
	msg := fmt.Sprintf("the change would invalidate %d existing %s entities", o.count, bp)
	if o.count > maxOffenders {
		msg += fmt.Sprintf(" (first %d listed)", maxOffenders)
	}
	return o.vs.err(msg)
}

// dropChange ends a validation that failed (its caller may have gone).
func (s *Service) dropChange(c *BlueprintChange) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = s.endChange(ctx, c.Blueprint, c.ID)
}

// endChange removes change id of bp if it is still in progress.
func (s *Service) endChange(ctx context.Context, bp, id string) error {
	return s.store.Update(ctx, func(tx Tx) error {
		cur, err := tx.Change(ctx, bp)
		if err != nil || cur == nil || cur.ID != id {
			return err
		}
		tx.DeleteChange(bp)
		return nil
	})
}

// abandonStale ends a validation of bp whose validator stopped reporting
// (its process died mid-scan), so that the blueprint can change again.
func (s *Service) abandonStale(ctx context.Context, bp string) error {
	c, p, err := s.store.Change(ctx, bp)
	if err != nil || c == nil || c.Phase != PhaseValidating {
		return err
	}
	beat := p.Beat
	if beat.IsZero() {
		beat = c.StartedAt
	}
	if s.now().Sub(beat) < staleAfter {
		return nil
	}
	return s.endChange(ctx, bp, c.ID)
}

// changeStatus returns bp's change in progress as shown to readers.
func (s *Service) changeStatus(ctx context.Context, bp string) (*ChangeStatus, error) {
	c, p, err := s.store.Change(ctx, bp)
	if err != nil || c == nil {
		return nil, err
	}
	return c.status(*p), nil
}

func (c *BlueprintChange) status(p ChangeProgress) *ChangeStatus {
	if p.Total == 0 {
		p.Total = c.Entities * max(len(c.Properties), 1)
	}
	return &ChangeStatus{ID: c.ID, Phase: c.Phase, Properties: c.Properties, Checks: c.Checks, Done: p.Done, Total: p.Total, StartedAt: c.StartedAt}
}

func newChangeID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
