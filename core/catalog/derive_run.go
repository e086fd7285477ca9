package catalog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// deriveChunk is how many entities one recomputing transaction reads and
// watches (Redis WATCH costs grow with the square of the watched keys).
const deriveChunk = 100

// RunDerive recomputes marked derived values (see derive.go) until ctx
// ends, looking for marks every poll. Every process serving the catalog
// runs it: two handling the same mark do the same idempotent work.
func (s *Service) RunDerive(ctx context.Context, poll time.Duration, log *slog.Logger) {
	ctx = WithActor(ctx, SystemActor(DeriveActor))
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		n, err := s.RunDeriveOnce(ctx)
		if err != nil && ctx.Err() == nil {
			log.Error("derived values", "err", err)
		}
		if n > 0 && err == nil {
			continue // more may be waiting
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// staleClaim is how long a claimed mark may go without a heartbeat
// before another worker takes it over (its worker is presumed dead).
const staleClaim = time.Minute

// RunDeriveOnce claims the marks pending now, handles them (a whole
// blueprint's to the end) and returns how many it handled.
func (s *Service) RunDeriveOnce(ctx context.Context) (int, error) {
	marks, err := s.store.Claim(ctx, 500, staleClaim)
	if err != nil || len(marks) == 0 {
		return 0, err
	}
	var refs, readers []Ref // claimed through their marks, or not
	depths := map[Ref]int{} // the automation depth their recomputation carries on
	var done []DirtyMark
	var errs []error
	for _, m := range marks {
		switch m.Kind {
		case MarkEntity:
			refs = append(refs, m.Ref)
			depths[m.Ref] = max(depths[m.Ref], m.Depth)
			done = append(done, m)
		case MarkReferrers:
			found, err := s.tellReaders(ctx, m.Ref, m.Depth)
			if err != nil {
				errs = append(errs, err)
				continue // the claim goes stale and is handed out again
			}
			readers = append(readers, found...)
			for _, r := range found {
				depths[r] = max(depths[r], m.Depth)
			}
			done = append(done, m)
		case MarkBlueprint:
			err := s.rederiveBlueprint(ctx, m)
			if err == nil {
				err = s.store.Done(ctx, m)
			}
			errs = append(errs, err)
		default:
			done = append(done, m)
		}
	}
	for start := 0; start < len(refs); start += deriveChunk {
		if _, err := s.rederive(ctx, refs[start:min(start+deriveChunk, len(refs))], true, depths); err != nil {
			return 0, errors.Join(append(errs, err)...) // the claims go stale and are handed out again
		}
	}
	slices.SortFunc(readers, compareRefs)
	readers = slices.Compact(readers)
	for start := 0; start < len(readers); start += deriveChunk {
		// Readers are regraded (from what their transaction reads) with
		// their aggregations kept: no claim needed.
		if _, err := s.rederive(ctx, readers[start:min(start+deriveChunk, len(readers))], false, depths); err != nil {
			return 0, errors.Join(append(errs, err)...)
		}
	}
	for _, m := range done {
		errs = append(errs, s.store.Done(ctx, m))
	}
	return len(marks), errors.Join(errs...)
}

func compareRefs(a, b Ref) int {
	switch {
	case a.Blueprint != b.Blueprint:
		if a.Blueprint < b.Blueprint {
			return -1
		}
		return 1
	case a.Identifier < b.Identifier:
		return -1
	case a.Identifier > b.Identifier:
		return 1
	}
	return 0
}

// tellReaders handles a change of ref that entities read through their
// relations: each reader whose mirror properties read a changed property
// gets an entity.updated event naming them (its detail: {"mirrors",
// "cause"}), and the readers whose scorecards read ref are returned, to
// be regraded.
func (s *Service) tellReaders(ctx context.Context, ref Ref, depth int) ([]Ref, error) {
	bp, err := s.store.Blueprint(ctx, ref.Blueprint)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	changed, err := s.store.Changed(ctx, ref)
	if err != nil {
		return nil, err
	}
	type edge struct{ blueprint, relation string }
	reads := map[edge]bool{}
	grades := map[string]bool{}
	for _, d := range bp.Dependents {
		for _, rel := range d.Reads {
			reads[edge{d.Blueprint, rel}] = true
		}
		grades[d.Blueprint] = d.Grades
	}
	if len(reads) == 0 {
		return nil, s.store.Told(ctx, ref, changed)
	}
	edges, err := s.store.ReferrersOf(ctx, []Ref{ref})
	if err != nil {
		return nil, err
	}
	var regrade []Ref
	mirrors := map[edge][]string{}
	told := map[Ref][]string{}
	var order []Ref
	for _, e := range edges[0] {
		if !reads[edge{e.From.Blueprint, e.Relation}] {
			continue
		}
		if grades[e.From.Blueprint] {
			regrade = append(regrade, e.From)
		}
		k := edge{e.From.Blueprint, e.Relation}
		names, known := mirrors[k] // one lookup per kind of edge, not per reader
		if !known {
			var err error
			if names, err = s.mirrorsReading(ctx, k.blueprint, k.relation, changed); err != nil {
				return nil, err
			}
			mirrors[k] = names
		}
		if len(names) > 0 {
			if _, ok := told[e.From]; !ok {
				order = append(order, e.From)
			}
			told[e.From] = append(told[e.From], names...)
		}
	}
	for start := 0; start < len(order); start += deriveChunk {
		if err := s.announceMirrors(ctx, ref, order[start:min(start+deriveChunk, len(order))], told, depth); err != nil {
			return nil, err
		}
	}
	return regrade, s.store.Told(ctx, ref, changed)
}

// mirrorsReading names blueprint bp's mirror properties that read one of
// props through relation rel.
func (s *Service) mirrorsReading(ctx context.Context, bp, rel string, props []string) ([]string, error) {
	b, err := s.store.Blueprint(ctx, bp)
	if err != nil {
		return nil, err
	}
	c, err := s.compile(b)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range c.mirrors {
		if m.Relation == rel && slices.Contains(props, m.Property) {
			out = append(out, m.Name)
		}
	}
	return out, nil
}

// MirrorsChanged is the detail of the entity.updated event telling that
// an entity's mirror properties changed because what they read did.
type MirrorsChanged struct {
	Mirrors []string `json:"mirrors"`
	Cause   Ref      `json:"cause"`
}

// announceMirrors appends, for each of refs, an entity.updated event
// naming its mirror properties that changed (told[ref]).
func (s *Service) announceMirrors(ctx context.Context, cause Ref, refs []Ref, told map[Ref][]string, depth int) error {
	return s.store.Update(ctx, func(tx Tx) error {
		ents, err := tx.Entities(ctx, refs)
		if err != nil {
			return err
		}
		for i, e := range ents {
			if e == nil {
				continue
			}
			names := told[refs[i]]
			slices.Sort(names)
			detail, _ := json.Marshal(MirrorsChanged{Mirrors: slices.Compact(names), Cause: cause})
			doc := rawJSON(e)
			tx.Record(Event{Type: EventEntityUpdated, Blueprint: e.Blueprint, Identifier: e.Identifier,
				Before: doc, After: doc, Actor: DeriveActor, At: s.timestamp(), Detail: detail, Depth: depth})
		}
		return nil
	})
}

// rederiveBlueprint recomputes every entity of a marked blueprint, in
// identifier order from where an earlier run stopped, recording progress
// (and heartbeating its claim) after every chunk. Marking the blueprint
// again discards the progress: this run then stops, and the next one
// starts over.
func (s *Service) rederiveBlueprint(ctx context.Context, m DirtyMark) error {
	bp := m.Ref.Blueprint
	prev, err := s.store.DeriveProgress(ctx, bp)
	if err != nil {
		return err
	}
	p := DeriveProgress{Run: newRunID()}
	if prev != nil {
		p = *prev
	}
	for {
		ids, total, err := s.store.EntityIDs(ctx, bp, p.After, deriveChunk*deriveWorkers)
		if err != nil {
			return err
		}
		if err := s.rederiveParallel(ctx, bp, ids); err != nil {
			return err
		}
		next := p
		if len(ids) > 0 {
			next.After, next.Done = ids[len(ids)-1], p.Done+len(ids)
		}
		next.Total = max(total, next.Done)
		if len(ids) == 0 {
			next.Total = next.Done
		}
		ok, err := s.store.SaveDeriveProgress(ctx, bp, prev, &next)
		if err != nil || !ok {
			return err // marked again: the next run starts over
		}
		if len(ids) == 0 {
			return nil
		}
		if err := s.store.Heartbeat(ctx, m); err != nil {
			return err
		}
		p, prev = next, &next
	}
}

// deriveWorkers is how many chunks of a whole blueprint are recomputed
// at once: one waits on Redis while another computes.
const deriveWorkers = 8

// rederiveParallel recomputes ids of blueprint bp in chunks, up to
// deriveWorkers at once, each in the background (Options.Background).
// Aggregations are read outside the transactions: with them, each chunk
// claims its entities first (rederiveClaimed).
func (s *Service) rederiveParallel(ctx context.Context, bp string, ids []string) error {
	b, err := s.store.Blueprint(ctx, bp)
	if err != nil {
		return err
	}
	withAggs := len(b.AggregationProperties) > 0
	recompute := func(refs []Ref) error {
		if withAggs {
			return s.rederiveClaimed(ctx, refs)
		}
		_, err := s.rederive(ctx, refs, false, nil)
		return err
	}
	errs := make(chan error, deriveWorkers)
	n := 0
	for start := 0; start < len(ids); start += deriveChunk {
		part := ids[start:min(start+deriveChunk, len(ids))]
		refs := make([]Ref, len(part))
		for i, id := range part {
			refs[i] = Ref{Blueprint: bp, Identifier: id}
		}
		n++
		go func() {
			var err error
			s.background(func() { err = recompute(refs) })
			errs <- err
		}()
	}
	var all []error
	for range n {
		all = append(all, <-errs)
	}
	return errors.Join(all...)
}

func newRunID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// rederiveClaimed claims refs (see Store.ClaimEntities), recomputes those
// it got and releases them. Those claimed elsewhere are marked, and
// recomputed once their claimer is done.
func (s *Service) rederiveClaimed(ctx context.Context, refs []Ref) error {
	got, err := s.store.ClaimEntities(ctx, refs)
	if err != nil || len(got) == 0 {
		return err
	}
	_, err = s.rederive(ctx, got, true, nil)
	return errors.Join(err, s.store.Release(ctx, got))
}

// rederive recomputes the derived values of up to deriveChunk entities and
// writes those that changed, with their events and the marks they cause;
// it returns how many changed. The aggregation inputs are read first,
// outside the transaction: a change to them meanwhile marks the entity
// again.
func (s *Service) rederive(ctx context.Context, refs []Ref, withAggregations bool, depths map[Ref]int) (int, error) {
	for {
		n, err := s.rederiveOnce(ctx, refs, withAggregations, depths)
		var moved definitionMoved
		if !errors.As(err, &moved) {
			return n, err
		}
		// A definition changed between the reads outside the transaction
		// and those in it: again, from the new one.
	}
}

// definitionMoved: a blueprint read outside a recomputation's
// transaction is not the one read in it.
type definitionMoved struct{ blueprint string }

func (d definitionMoved) Error() string {
	return "blueprint " + d.blueprint + " changed while recomputing"
}

func (s *Service) rederiveOnce(ctx context.Context, refs []Ref, withAggregations bool, depths map[Ref]int) (int, error) {
	compiled := map[string]*CompiledBlueprint{}
	for _, r := range refs {
		if _, ok := compiled[r.Blueprint]; ok {
			continue
		}
		bp, err := s.store.Blueprint(ctx, r.Blueprint)
		if errors.Is(err, ErrNotFound) {
			compiled[r.Blueprint] = nil
			continue
		}
		if err != nil {
			return 0, err
		}
		if compiled[r.Blueprint], err = s.compile(bp); err != nil {
			return 0, err
		}
	}
	var aggs map[Ref]map[string]any
	if withAggregations {
		var err error
		if aggs, err = s.aggregationValues(ctx, refs, compiled); err != nil {
			return 0, err
		}
	}
	changed := 0
	err := s.store.Update(ctx, func(tx Tx) error {
		changed = 0
		ents, stored, err := tx.ReadDerived(ctx, refs)
		if err != nil {
			return err
		}
		bps := map[string]*CompiledBlueprint{}
		var need []Ref
		for _, e := range ents {
			if e == nil {
				continue
			}
			c, ok := bps[e.Blueprint]
			if !ok {
				bp, err := tx.Blueprint(ctx, e.Blueprint)
				if err != nil {
					return err
				}
				if c, err = s.compile(bp); err != nil {
					return err
				}
				bps[e.Blueprint] = c
			}
			need = append(need, c.gradingTargets(e)...)
		}
		targets := map[Ref]*Entity{}
		if len(need) > 0 {
			slices.SortFunc(need, compareRefs)
			need = slices.Compact(need)
			got, err := tx.Entities(ctx, need)
			if err != nil {
				return err
			}
			for i, t := range got {
				if t != nil {
					targets[need[i]] = t
				}
			}
		}
		now := s.now()
		for i, e := range ents {
			if e == nil {
				continue
			}
			c := bps[e.Blueprint]
			if cc := compiled[e.Blueprint]; cc == nil || !cc.Blueprint.UpdatedAt.Equal(c.Blueprint.UpdatedAt) {
				return definitionMoved{e.Blueprint}
			}
			after := *e
			after.Aggregations = c.carryAggregations(e)
			for name, v := range aggs[e.Ref()] {
				after.Aggregations[name] = v
			}
			after.Scorecards = c.grade(&after, targets, now)
			var graded []byte
			if len(after.Scorecards) > 0 {
				graded = appendObject(nil, after.Scorecards)
			}
			sameAggs, sameScores := sameObject(e.Aggregations, after.Aggregations), sameStored(stored[i], graded)
			if sameAggs && sameScores {
				continue
			}
			if len(stored[i]) > 0 {
				if err := json.Unmarshal(stored[i], &e.Scorecards); err != nil {
					return fmt.Errorf("decode scorecards of %s/%s: %w", e.Blueprint, e.Identifier, err)
				}
			}
			ev := Event{Blueprint: e.Blueprint, Identifier: e.Identifier, Actor: DeriveActor, At: s.timestamp(), Depth: depths[e.Ref()]}
			if !sameAggs {
				// A value automations may watch: announced. Rule
				// verdicts alone are not (level changes are, below).
				ev.Type = EventEntityUpdated
				if after.CreatedAt.Equal(after.UpdatedAt) {
					// "never changed" would be wrong from now on (history).
					after.UpdatedAt = after.UpdatedAt.Add(time.Microsecond)
				}
			}
			tx.PutDerived(c.Blueprint, e, &after, ev)
			s.derivedEffects(tx, c, e, &after, ev)
			changed++
		}
		return nil
	})
	return changed, err
}

// aggregationValues computes the aggregation properties of refs from the
// entities pointing at them.
func (s *Service) aggregationValues(ctx context.Context, refs []Ref, compiled map[string]*CompiledBlueprint) (map[Ref]map[string]any, error) {
	var with []Ref
	for _, r := range refs {
		if c := compiled[r.Blueprint]; c != nil && len(c.aggregations) > 0 {
			with = append(with, r)
		}
	}
	if len(with) == 0 {
		return nil, nil
	}
	edges, err := s.store.ReferrersOf(ctx, with)
	if err != nil {
		return nil, err
	}
	// Read every referrer an aggregation counts once (by blueprint, so
	// that each read may decode only what the aggregations read).
	wanted := map[Ref]*Entity{}
	var order []Ref
	for i, r := range with {
		c := compiled[r.Blueprint]
		for _, e := range edges[i] {
			for _, a := range c.aggregations {
				if e.From.Blueprint == a.Target && e.Relation == a.Relation {
					if _, ok := wanted[e.From]; !ok {
						wanted[e.From] = nil
						order = append(order, e.From)
					}
				}
			}
		}
	}
	slices.SortFunc(order, compareRefs)
	only := aggregationReads(compiled)
	for start := 0; start < len(order); start += 10_000 {
		part := order[start:min(start+10_000, len(order))]
		var got []*Entity
		var err error
		if p, ok := only[part[0].Blueprint]; ok && p != nil && sameBlueprintRefs(part) {
			got, err = s.store.ReadProjected(ctx, part, p)
		} else {
			got, err = s.store.Entities(ctx, part)
		}
		if err != nil {
			return nil, err
		}
		for i, e := range got {
			wanted[part[i]] = e
		}
	}
	now := s.now()
	out := make(map[Ref]map[string]any, len(with))
	for i, r := range with {
		c := compiled[r.Blueprint]
		vals := make(map[string]any, len(c.aggregations))
		for _, a := range c.aggregations {
			var over []*Entity
			for _, e := range edges[i] {
				if e.From.Blueprint == a.Target && e.Relation == a.Relation {
					over = append(over, wanted[e.From])
				}
			}
			vals[a.name] = a.aggregate(over, now)
		}
		out[r] = vals
	}
	return out, nil
}

// sameStored compares stored JSON with an encoding of this package (null
// and nothing alike).
func sameStored(stored json.RawMessage, encoded []byte) bool {
	if len(stored) == 0 || string(stored) == "null" {
		return len(encoded) == 0
	}
	return string(stored) == string(encoded)
}

// aggregationReads says, per target blueprint, which parts of its
// entities the aggregations over it read; nil when some rule names a
// meta-property other than $identifier and $blueprint (the whole entity
// is read then).
func aggregationReads(compiled map[string]*CompiledBlueprint) map[string]*Projection {
	out := map[string]*Projection{}
	full := map[string]bool{}
	for _, c := range compiled {
		if c == nil {
			continue
		}
		for _, a := range c.aggregations {
			p := out[a.Target]
			if p == nil {
				p = &Projection{}
				out[a.Target] = p
			}
			if a.Property != "" {
				p.Properties = append(p.Properties, a.Property)
			}
			a.Query.Walk(func(r *Rule) {
				switch {
				case r.IsCombinator():
				case r.Property == "$identifier" || r.Property == "$blueprint":
				case strings.HasPrefix(r.Property, "$") || r.Operator == "relatedTo":
					full[a.Target] = true
				default:
					p.Properties = append(p.Properties, r.Property)
					p.Relations = append(p.Relations, r.Property)
				}
			})
		}
	}
	for bp := range full {
		out[bp] = nil
	}
	return out
}

// sameBlueprintRefs reports whether refs all name one blueprint.
func sameBlueprintRefs(refs []Ref) bool {
	for _, r := range refs {
		if r.Blueprint != refs[0].Blueprint {
			return false
		}
	}
	return true
}
