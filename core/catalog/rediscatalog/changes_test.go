package rediscatalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/devredis/devredistest"
	"github.com/portico-dev/portico/internal/redistest"
)

// changeEnv is a store and a service over a fresh key prefix.
type changeEnv struct {
	t     *testing.T
	ctx   context.Context
	rdb   redis.UniversalClient
	store *Store
	svc   *catalog.Service
}

// backends runs fn against a real redis-server and against miniredis.
func backends(t *testing.T, fn func(t *testing.T, e *changeEnv)) {
	t.Run("redis", func(t *testing.T) {
		c := redis.NewClient(&redis.Options{Addr: redistest.Start(t), PoolSize: 32})
		t.Cleanup(func() { _ = c.Close() })
		devredistest.Check(t, c)
		fn(t, newChangeEnv(t, c))
	})
	t.Run("miniredis", func(t *testing.T) {
		m := miniredis.RunT(t)
		c := redis.NewClient(&redis.Options{Addr: m.Addr()})
		t.Cleanup(func() { _ = c.Close() })
		devredistest.Check(t, c)
		fn(t, newChangeEnv(t, c))
	})
}

func newChangeEnv(t *testing.T, rdb redis.UniversalClient) *changeEnv {
	prefix := fmt.Sprintf("chg%d", time.Now().UnixNano())
	store := New(rdb, Options{Prefix: prefix})
	return &changeEnv{
		t: t, ctx: catalog.WithActor(context.Background(), catalog.Actor{ID: "alice"}), rdb: rdb, store: store,
		svc: catalog.NewService(store, catalog.Options{}),
	}
}

// restart is a new process over the same data.
func (e *changeEnv) restart() *changeEnv {
	store := New(e.rdb, Options{Prefix: e.store.keys.prefix})
	return &changeEnv{t: e.t, ctx: e.ctx, rdb: e.rdb, store: store, svc: catalog.NewService(store, catalog.Options{})}
}

func (e *changeEnv) put(js string) (*catalog.Blueprint, error) {
	var bp catalog.Blueprint
	if err := json.Unmarshal([]byte(js), &bp); err != nil {
		e.t.Fatal(err)
	}
	out, _, err := e.svc.PutBlueprint(e.ctx, &bp, false)
	return out, err
}

func (e *changeEnv) mustPut(js string) *catalog.Blueprint {
	e.t.Helper()
	bp, err := e.put(js)
	if err != nil {
		e.t.Fatalf("put blueprint %s: %v", js, err)
	}
	return bp
}

func (e *changeEnv) seed(n int) {
	e.t.Helper()
	var items []catalog.WriteItem
	for i := 0; i < n; i++ {
		items = append(items, catalog.WriteItem{Entity: svcEntity(i, 1+i%4, langs[i%len(langs)])})
	}
	res, err := e.svc.Write(e.ctx, items)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			e.t.Fatalf("seed %s: %v", r.Identifier, r.Err)
		}
	}
}

var langs = []string{"go", "python", "rust", "java", "ruby"}

func svcEntity(i, tier int, lang string) *catalog.Entity {
	return &catalog.Entity{
		Identifier: fmt.Sprintf("s%05d", i), Blueprint: "svc",
		Properties: map[string]any{
			"tier": float64(tier), "lang": lang, "name": fmt.Sprintf("name-%d-%d", i, tier),
			"tags": []any{lang, fmt.Sprintf("t%d", tier)},
		},
	}
}

// svcBP is the test blueprint: maxTier 0 means no maximum; high lists the
// properties with a high-cardinality hint.
func svcBP(maxTier int, high ...string) string {
	card := func(p string) string {
		if slices.Contains(high, p) {
			return `, "cardinality": "high"`
		}
		return `, "cardinality": "low"`
	}
	max := ""
	if maxTier > 0 {
		max = fmt.Sprintf(`, "maximum": %d`, maxTier)
	}
	return `{"identifier": "svc", "schema": {"properties": {
		"tier": {"type": "integer"` + max + `},
		"lang": {"type": "string"` + card("lang") + `},
		"name": {"type": "string"` + card("name") + `},
		"tags": {"type": "array", "items": {"type": "string"}` + card("tags") + `}}}}`
}

// checkIndexes compares every index key of blueprint bp with what the
// stored documents say under its current definition, member by member
// (values-index members, never removed, are left out), and every stored
// entity with the definition.
func (e *changeEnv) checkIndexes(bp string) {
	e.t.Helper()
	def, err := e.store.Blueprint(e.ctx, bp)
	if err != nil {
		e.t.Fatal(err)
	}
	compiled, err := catalog.CompileBlueprint(def)
	if err != nil {
		e.t.Fatal(err)
	}
	want := map[string]bool{}
	ids, _, err := e.store.EntityIDs(e.ctx, bp, "", 1<<30)
	if err != nil {
		e.t.Fatal(err)
	}
	refs := make([]catalog.Ref, len(ids))
	for i, id := range ids {
		refs[i] = catalog.Ref{Blueprint: bp, Identifier: id}
	}
	ents, err := e.store.Entities(e.ctx, refs)
	if err != nil {
		e.t.Fatal(err)
	}
	for i, ent := range ents {
		if ent == nil {
			e.t.Fatalf("%s is listed but has no document", ids[i])
		}
		if err := compiled.ValidateEntity(ent); err != nil {
			e.t.Fatalf("stored %s violates the stored blueprint: %v", ent.Identifier, err)
		}
		for _, x := range indexEntries(nil, def, ent) {
			if x.kind != valuesIndex {
				want[fmt.Sprintf("%s %s %g", e.store.keys.indexKey(bp, x), x.member, x.score)] = true
			}
		}
	}
	got := map[string]bool{}
	iter := e.rdb.Scan(e.ctx, 0, e.store.keys.prefix+"|ix|"+bp+"|*", 1000).Iterator()
	for iter.Next(e.ctx) {
		key := iter.Val()
		switch {
		case strings.HasSuffix(key, "|v"):
		case strings.HasSuffix(key, "|n") || strings.HasSuffix(key, "|x"):
			for _, z := range e.rdb.ZRangeWithScores(e.ctx, key, 0, -1).Val() {
				got[fmt.Sprintf("%s %s %g", key, z.Member, z.Score)] = true
			}
		default:
			for _, m := range e.rdb.SMembers(e.ctx, key).Val() {
				got[fmt.Sprintf("%s %s %g", key, m, 0.0)] = true
			}
		}
	}
	if err := iter.Err(); err != nil {
		e.t.Fatal(err)
	}
	var missing, stale []string
	for k := range want {
		if !got[k] {
			missing = append(missing, k)
		}
	}
	for k := range got {
		if !want[k] {
			stale = append(stale, k)
		}
	}
	if len(missing)+len(stale) > 0 {
		for _, x := range first(stale) {
			f := strings.Fields(x)
			e.logHistory(f[1])
		}
		e.t.Fatalf("indexes of %s (%d entities): %d entries missing (first %v), %d stale (first %v)",
			bp, len(ents), len(missing), first(missing), len(stale), first(stale))
	}
	if len(want) == 0 {
		e.t.Fatal("no index entries expected: the check checks nothing")
	}
}

func first(s []string) []string {
	slices.Sort(s)
	return s[:min(3, len(s))]
}

// noChangeLeft asserts nothing of a change remains stored.
func (e *changeEnv) noChangeLeft(bp string) {
	e.t.Helper()
	k := e.store.keys
	if n := e.rdb.Exists(e.ctx, k.change(bp), k.changeProgress(bp), k.offenders(bp)).Val(); n != 0 {
		e.t.Fatalf("%d keys of a change of %s remain", n, bp)
	}
	if bps, _ := e.store.Changes(e.ctx); len(bps) != 0 {
		e.t.Fatalf("changes still listed: %v", bps)
	}
}

// TestBlueprintChangesInterleaved changes a blueprint over and over —
// tightening and loosening a constraint (streaming validations) and moving
// index layouts (background backfills, carried by a running RunChanges) —
// while writers upsert and delete its entities and a reader searches. After
// it, every stored entity satisfies the blueprint and every index entry is
// exactly what the documents say: none missing, none stale.
func TestBlueprintChangesInterleaved(t *testing.T) {
	backends(t, func(t *testing.T, e *changeEnv) {
		const n = 2600 // several scan and backfill chunks
		e.mustPut(svcBP(0))
		e.seed(n)
		ctx, cancel := context.WithCancel(e.ctx)
		defer cancel()
		runnerDone := make(chan struct{})
		go func() {
			defer close(runnerDone)
			e.svc.RunChanges(ctx, 20*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
		}()

		stop := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		var writeErrs []error
		for w := 0; w < 3; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(w), 7))
				for {
					select {
					case <-stop:
						return
					default:
					}
					i := r.IntN(n + 200)
					var err error
					if r.IntN(10) == 0 {
						_, err = e.svc.DeleteEntity(e.ctx, catalog.Ref{Blueprint: "svc", Identifier: fmt.Sprintf("s%05d", i)}, false)
					} else {
						_, _, err = e.svc.PutEntity(e.ctx, svcEntity(i, 1+r.IntN(5), langs[r.IntN(len(langs))]), false)
					}
					if err != nil && !errors.Is(err, catalog.ErrNotFound) && !errors.As(err, new(*catalog.ValidationError)) {
						mu.Lock()
						writeErrs = append(writeErrs, err)
						mu.Unlock()
						return
					}
				}
			}(w)
		}
		wg.Add(1)
		go func() { // searches never return a wrong match, whatever the layout
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				var q catalog.SearchQuery
				if err := json.Unmarshal([]byte(`{"query": {"combinator": "and", "rules": [{"property": "lang", "operator": "=", "value": "go"}]}, "limit": 1000}`), &q); err != nil {
					panic(err)
				}
				page, err := e.svc.Search(e.ctx, q)
				if err != nil {
					mu.Lock()
					writeErrs = append(writeErrs, err)
					mu.Unlock()
					return
				}
				for _, x := range page.Entities {
					if x.Properties["lang"] != "go" {
						mu.Lock()
						writeErrs = append(writeErrs, fmt.Errorf("lang = go returned %s with %v", x.Identifier, x.Properties["lang"]))
						mu.Unlock()
						return
					}
				}
			}
		}()

		steps := []string{
			svcBP(4), svcBP(0), svcBP(0, "lang"), svcBP(4, "lang"), svcBP(0, "lang", "name", "tags"),
			svcBP(4, "name"), svcBP(0), svcBP(4, "tags"), svcBP(0),
		}
		applied, refused, busy := 0, 0, 0
		for _, js := range steps {
			deadline := time.Now().Add(5 * time.Minute)
			for {
				_, err := e.put(js)
				if errors.Is(err, catalog.ErrConflict) && time.Now().Before(deadline) {
					busy++ // a backfill still runs: wait for it
					time.Sleep(10 * time.Millisecond)
					continue
				}
				switch {
				case err == nil:
					applied++
				case errors.As(err, new(*catalog.ValidationError)):
					refused++
				default:
					t.Fatalf("change %s: %v", js, err)
				}
				break
			}
		}
		close(stop)
		wg.Wait()
		cancel()
		<-runnerDone
		for _, err := range writeErrs {
			t.Error(err)
		}
		if err := e.svc.RunChangesOnce(e.ctx); err != nil {
			t.Fatal(err)
		}
		e.noChangeLeft("svc")
		e.checkIndexes("svc")
		t.Logf("%d changes applied, %d refused, %d retried while a backfill ran", applied, refused, busy)
		if applied < 5 {
			t.Fatalf("only %d of %d changes applied: the layouts were hardly exercised", applied, len(steps))
		}
	})
}

// TestBackfillResumesAfterRestart stops a backfill after its first chunk,
// as a crash would, and lets another process finish it: progress shows on
// the blueprint, the stream tells the start, the progress and the end, and
// the indexes come out exact.
func TestBackfillResumesAfterRestart(t *testing.T) {
	backends(t, func(t *testing.T, e *changeEnv) {
		e.mustPut(svcBP(0))
		e.seed(1200)
		_, before, err := e.store.EventBounds(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if bp := e.mustPut(svcBP(0, "lang", "name")); bp.Change != nil {
			t.Logf("the PUT's answer carries the change: %+v", bp.Change)
		}
		bp, err := e.svc.GetBlueprint(e.ctx, "svc")
		if err != nil || bp.Change == nil || bp.Change.Phase != catalog.PhaseBackfilling || !slices.Equal(bp.Change.Properties, []string{"lang", "name"}) || bp.Change.Total != 2*1200 {
			t.Fatalf("GET after a layout change: change %+v, %v", bp.Change, err)
		}
		p, done, err := e.store.Backfill(e.ctx, "svc", bp.Change.ID, 500, catalog.Event{Type: "unused"})
		if err != nil || done || p.Done == 0 || p.Done >= p.Total {
			t.Fatalf("first chunk: %+v done=%v, %v", p, done, err)
		}

		other := e.restart() // the first process is gone
		bp, err = other.svc.GetBlueprint(e.ctx, "svc")
		if err != nil || bp.Change == nil || bp.Change.Done != p.Done || bp.Change.Total != p.Total {
			t.Fatalf("GET after a crash: change %+v, %v", bp.Change, err)
		}
		if err := other.svc.RunChangesOnce(e.ctx); err != nil {
			t.Fatal(err)
		}
		if bp, _ = other.svc.GetBlueprint(e.ctx, "svc"); bp.Change != nil {
			t.Fatalf("the change is still shown after the backfill: %+v", bp.Change)
		}
		other.noChangeLeft("svc")
		other.checkIndexes("svc")

		evs, err := e.store.Events(e.ctx, before, 100, 0)
		if err != nil {
			t.Fatal(err)
		}
		var types []string
		for _, ev := range evs {
			if ev.Type != catalog.EventBackfillProgress || len(types) == 0 || types[len(types)-1] != ev.Type {
				types = append(types, ev.Type)
			}
		}
		want := []string{catalog.EventBackfillStarted, catalog.EventBlueprintUpdated, catalog.EventBackfillProgress, catalog.EventBackfillFinished}
		if !slices.Equal(types, want) {
			t.Fatalf("events %v, want %v", types, want)
		}
	})
}

// TestWritesDuringValidation starts a validation by hand (as a PUT does
// before it scans) and writes: an entity the proposed definition refuses
// is recorded for the change to read again, one it accepts is not, and
// both are written (the stored definition is still in force).
func TestWritesDuringValidation(t *testing.T) {
	backends(t, func(t *testing.T, e *changeEnv) {
		e.mustPut(svcBP(0))
		e.seed(10)
		var next catalog.Blueprint
		if err := json.Unmarshal([]byte(svcBP(3)), &next); err != nil {
			t.Fatal(err)
		}
		c := &catalog.BlueprintChange{ID: "c1", Blueprint: "svc", Phase: catalog.PhaseValidating, Next: &next, StartedAt: time.Now()}
		if err := e.store.Update(e.ctx, func(tx catalog.Tx) error { tx.PutChange(c); return nil }); err != nil {
			t.Fatal(err)
		}
		for _, ent := range []*catalog.Entity{svcEntity(100, 5, "go"), svcEntity(101, 2, "go")} {
			if _, _, err := e.svc.PutEntity(e.ctx, ent, false); err != nil {
				t.Fatalf("write %s during a validation: %v", ent.Identifier, err)
			}
		}
		got := e.rdb.SMembers(e.ctx, e.store.keys.offenders("svc")).Val()
		if !slices.Equal(got, []string{"s00100"}) {
			t.Fatalf("offenders recorded %v, want [s00100] (tier 5 > 3)", got)
		}
		// Another change waits for this one ...
		if _, err := e.put(svcBP(2)); !errors.Is(err, catalog.ErrConflict) {
			t.Fatalf("a second change during a validation: %v, want a conflict", err)
		}
		// ... unless its validator stopped reporting long ago (it died).
		c.StartedAt = time.Now().Add(-2 * time.Hour)
		if err := e.store.Update(e.ctx, func(tx catalog.Tx) error { tx.PutChange(c); return nil }); err != nil {
			t.Fatal(err)
		}
		if _, err := e.put(svcBP(6)); err != nil {
			t.Fatalf("a change after a dead validation: %v", err)
		}
		e.noChangeLeft("svc")
	})
}

func (e *changeEnv) logHistory(id string) {
	h, _ := e.store.History(e.ctx, catalog.Ref{Blueprint: "svc", Identifier: id})
	for _, ev := range h {
		e.t.Logf("%s %s before=%.120s after=%.120s", ev.At.Format("15:04:05.000000"), ev.Type, ev.Before, ev.After)
	}
}
