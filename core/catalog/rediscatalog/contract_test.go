package rediscatalog_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/core/catalog/rediscatalog"
	"github.com/portico-dev/portico/devredis/devredistest"
	"github.com/portico-dev/portico/internal/redistest"
)

// The contract suite: everything catalog.Service promises, driven through
// rediscatalog, against miniredis and against a real redis-server.

// TestContractMiniredis runs the suite as `portico dev` configures the
// store on its embedded miniredis: blocking event reads poll.
func TestContractMiniredis(t *testing.T) {
	runContract(t, rediscatalog.Options{PollEvents: 20 * time.Millisecond}, func(t *testing.T) redis.UniversalClient {
		m := miniredis.RunT(t)
		c := redis.NewClient(&redis.Options{Addr: m.Addr()})
		t.Cleanup(func() { _ = c.Close() })
		devredistest.Check(t, c)
		return c
	})
}

func TestContractRedis(t *testing.T) {
	addr := redistest.Start(t) // one server for every subtest, killed at the end
	runContract(t, rediscatalog.Options{}, func(t *testing.T) redis.UniversalClient {
		c := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 32})
		t.Cleanup(func() { _ = c.Close() })
		if err := c.FlushAll(context.Background()).Err(); err != nil {
			t.Fatalf("FLUSHALL: %v", err)
		}
		devredistest.Check(t, c)
		return c
	})
}

func runContract(t *testing.T, opts rediscatalog.Options, newClient func(t *testing.T) redis.UniversalClient) {
	tests := []struct {
		name string
		fn   func(t *testing.T, e *env)
	}{
		{"Blueprints", testBlueprints},
		{"BlueprintChangeInvalidatingEntities", testBlueprintInvalidation},
		{"Entities", testEntities},
		{"EntityValidation", testEntityValidation},
		{"Patch", testPatch},
		{"ListPaging", testListPaging},
		{"BulkWrite", testBulkWrite},
		{"Unchanged", testUnchanged},
		{"Delete", testDelete},
		{"HistoryAndEvents", testHistoryAndEvents},
		{"SearchOperators", testSearchOperators},
		{"SearchAcrossIndexLayouts", testSearchAcrossIndexLayouts},
		{"UpgradeIndexes", testUpgradeIndexes},
		{"ReindexManyEntities", testReindexManyEntities},
		{"SearchSort", testSearchSort},
		{"SearchPagination", testSearchPagination},
		{"Related", testRelated},
		{"Concurrency", testConcurrency},
		{"DeleteRacesWrites", testDeleteRacesWrites},
		{"BlueprintChangeRacesWrites", testBlueprintChangeRacesWrites},
		{"IndexedSearchDoesNotScan", testIndexedSearchDoesNotScan},
		{"Aggregate", testAggregate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newEnv(t, newClient(t), opts))
		})
	}
}

// ---------------------------------------------------------------------------
// Harness

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type env struct {
	t      *testing.T
	ctx    context.Context // acting as alice
	rdb    redis.UniversalClient
	store  *rediscatalog.Store
	svc    *catalog.Service
	prefix string
	clock  *clock
}

var prefixSeq atomic.Int64

func newEnv(t *testing.T, rdb redis.UniversalClient, opts rediscatalog.Options) *env {
	opts.Prefix = fmt.Sprintf("ct%d", prefixSeq.Add(1))
	prefix := opts.Prefix
	store := rediscatalog.New(rdb, opts)
	clk := &clock{now: t0}
	svc := catalog.NewService(store, catalog.Options{Now: clk.Now})
	return &env{
		t:      t,
		ctx:    catalog.WithActor(context.Background(), catalog.Actor{ID: "alice"}),
		rdb:    rdb,
		store:  store,
		svc:    svc,
		prefix: prefix,
		clock:  clk,
	}
}

// settle carries the blueprint changes in progress (index backfills) to
// their end, as a running portal does in the background.
func (e *env) settle() {
	e.t.Helper()
	if err := e.svc.RunChangesOnce(e.ctx); err != nil {
		e.t.Fatalf("run blueprint changes: %v", err)
	}
	if bps, err := e.store.Changes(e.ctx); err != nil || len(bps) > 0 {
		e.t.Fatalf("changes still in progress after running them: %v, %v", bps, err)
	}
}

func as(id, datasource string) context.Context {
	return catalog.WithActor(context.Background(), catalog.Actor{ID: id, Datasource: datasource})
}

func decodeBlueprint(t *testing.T, js string) *catalog.Blueprint {
	t.Helper()
	var bp catalog.Blueprint
	if err := json.Unmarshal([]byte(js), &bp); err != nil {
		t.Fatalf("decode blueprint %s: %v", js, err)
	}
	return &bp
}

// blueprint puts a blueprint and fails the test on error.
func (e *env) blueprint(js string) *catalog.Blueprint {
	e.t.Helper()
	out, _, err := e.svc.PutBlueprint(e.ctx, decodeBlueprint(e.t, js), false)
	if err != nil {
		e.t.Fatalf("put blueprint %s: %v", js, err)
	}
	return out
}

func decodeEntity(t *testing.T, bp, js string) *catalog.Entity {
	t.Helper()
	ent, err := catalog.DecodeEntity([]byte(js))
	if err != nil {
		t.Fatalf("decode entity %s: %v", js, err)
	}
	ent.Blueprint = bp
	return ent
}

// put upserts an entity as alice and fails the test on error.
func (e *env) put(bp, js string) *catalog.Entity {
	e.t.Helper()
	return e.putAs(e.ctx, bp, js)
}

func (e *env) putAs(ctx context.Context, bp, js string) *catalog.Entity {
	e.t.Helper()
	out, _, err := e.svc.PutEntity(ctx, decodeEntity(e.t, bp, js), false)
	if err != nil {
		e.t.Fatalf("put %s entity %s: %v", bp, js, err)
	}
	return out
}

func (e *env) get(bp, id string) *catalog.Entity {
	e.t.Helper()
	out, err := e.svc.GetEntity(e.ctx, catalog.Ref{Blueprint: bp, Identifier: id})
	if err != nil {
		e.t.Fatalf("get %s/%s: %v", bp, id, err)
	}
	return out
}

func (e *env) mustNotExist(bp, id string) {
	e.t.Helper()
	_, err := e.svc.GetEntity(e.ctx, catalog.Ref{Blueprint: bp, Identifier: id})
	if !errors.Is(err, catalog.ErrNotFound) {
		e.t.Fatalf("get %s/%s: got %v, want ErrNotFound", bp, id, err)
	}
}

func (e *env) events() []catalog.Event {
	e.t.Helper()
	evs, err := e.svc.Events(e.ctx, "0", 1<<20, 0)
	if err != nil {
		e.t.Fatalf("events: %v", err)
	}
	return evs
}

func eventTypes(evs []catalog.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Type + " " + ev.Blueprint + "/" + ev.Identifier
	}
	return out
}

// search runs a SearchQuery given as JSON.
func (e *env) search(js string) *catalog.SearchPage {
	e.t.Helper()
	page, err := e.searchErr(js)
	if err != nil {
		e.t.Fatalf("search %s: %v", js, err)
	}
	return page
}

func (e *env) searchErr(js string) (*catalog.SearchPage, error) {
	var q catalog.SearchQuery
	if err := json.Unmarshal([]byte(js), &q); err != nil {
		e.t.Fatalf("decode search %s: %v", js, err)
	}
	return e.svc.Search(e.ctx, q)
}

func ids(ents []*catalog.Entity) []string {
	out := make([]string, len(ents))
	for i, x := range ents {
		out[i] = x.Identifier
	}
	return out
}

func sortedIDs(ents []*catalog.Entity) []string {
	out := ids(ents)
	sort.Strings(out)
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return slices.Equal(a, b)
}

// wantValidation asserts err is a *ValidationError carrying every path.
func wantValidation(t *testing.T, err error, paths ...string) *catalog.ValidationError {
	t.Helper()
	var verr *catalog.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("got %v (%T), want a *ValidationError with paths %v", err, err, paths)
	}
	have := map[string]bool{}
	for _, v := range verr.Violations {
		have[v.Path] = true
	}
	for _, p := range paths {
		if !have[p] {
			t.Fatalf("validation error %v lacks path %q", verr, p)
		}
	}
	return verr
}

func props(t *testing.T, raw json.RawMessage) map[string]any {
	t.Helper()
	if string(raw) == "null" {
		return nil
	}
	var ent catalog.Entity
	if err := json.Unmarshal(raw, &ent); err != nil {
		t.Fatalf("decode event entity %s: %v", raw, err)
	}
	return ent.Properties
}

// ---------------------------------------------------------------------------
// Blueprints

const teamBP = `{"identifier": "team", "title": "Team",
 "schema": {"properties": {"slack": {"type": "string"}, "size": {"type": "integer"}}},
 "relations": {"parent": {"target": "team"}}}`

const serviceBP = `{"identifier": "service", "title": "Service",
 "schema": {"properties": {
    "language": {"type": "string", "enum": ["go", "python", "rust"]},
    "tier": {"type": "integer", "minimum": 1, "maximum": 3},
    "tags": {"type": "array", "items": {"type": "string"}},
    "enabled": {"type": "boolean"},
    "score": {"type": "number"},
    "meta": {"type": "object"},
    "expiresAt": {"type": "string", "format": "timer"}},
  "required": ["language"]},
 "relations": {"owner": {"title": "Owner", "target": "team"},
               "dependsOn": {"target": "service", "many": true}},
 "calculationProperties": {"url": {"type": "string", "jq": "\"https://svc/\" + .identifier"}},
 "mirrorProperties": {"ownerSlack": {"path": "owner.slack"}}}`

func testBlueprints(t *testing.T, e *env) {
	ctx := e.ctx
	team := decodeBlueprint(t, teamBP)

	out, created, err := e.svc.PutBlueprint(ctx, team, true)
	if err != nil || !created {
		t.Fatalf("create team: created=%v err=%v", created, err)
	}
	if !out.CreatedAt.Equal(t0) || !out.UpdatedAt.Equal(t0) {
		t.Fatalf("timestamps %v %v, want %v", out.CreatedAt, out.UpdatedAt, t0)
	}
	if _, _, err := e.svc.PutBlueprint(ctx, decodeBlueprint(t, teamBP), true); !errors.Is(err, catalog.ErrAlreadyExists) {
		t.Fatalf("create twice: got %v, want ErrAlreadyExists", err)
	}

	// PUT of the same definition is idempotent: no second event, no new
	// timestamps.
	before := len(e.events())
	e.clock.Advance(time.Minute)
	again, created, err := e.svc.PutBlueprint(ctx, decodeBlueprint(t, teamBP), false)
	if err != nil || created {
		t.Fatalf("put same: created=%v err=%v", created, err)
	}
	if !again.UpdatedAt.Equal(t0) {
		t.Fatalf("idempotent put moved UpdatedAt to %v", again.UpdatedAt)
	}
	if n := len(e.events()); n != before {
		t.Fatalf("idempotent put appended %d events", n-before)
	}

	// A real change is an update: CreatedAt stays, UpdatedAt moves.
	changed := decodeBlueprint(t, teamBP)
	changed.Title = "Teams"
	upd, created, err := e.svc.PutBlueprint(ctx, changed, false)
	if err != nil || created {
		t.Fatalf("update: created=%v err=%v", created, err)
	}
	if !upd.CreatedAt.Equal(t0) || !upd.UpdatedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("update timestamps %v %v", upd.CreatedAt, upd.UpdatedAt)
	}
	got, err := e.svc.GetBlueprint(ctx, "team")
	if err != nil || got.Title != "Teams" {
		t.Fatalf("get team: %+v %v", got, err)
	}
	evs := e.events()
	if len(evs) != before+1 || evs[len(evs)-1].Type != catalog.EventBlueprintUpdated {
		t.Fatalf("events after update: %v", eventTypes(evs))
	}
	last := evs[len(evs)-1]
	var bpBefore, bpAfter catalog.Blueprint
	_ = json.Unmarshal(last.Before, &bpBefore)
	_ = json.Unmarshal(last.After, &bpAfter)
	if bpBefore.Title != "Team" || bpAfter.Title != "Teams" || last.Actor != "alice" {
		t.Fatalf("update event before=%q after=%q actor=%q", bpBefore.Title, bpAfter.Title, last.Actor)
	}

	// A relation must target an existing blueprint (or the blueprint itself).
	_, _, err = e.svc.PutBlueprint(ctx, decodeBlueprint(t, `{"identifier": "svc", "relations": {"owner": {"target": "nope"}}}`), false)
	wantValidation(t, err, "/relations/owner/target")
	if _, err := e.svc.GetBlueprint(ctx, "svc"); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("rejected blueprint was stored: %v", err)
	}
	e.blueprint(`{"identifier": "node", "relations": {"next": {"target": "node"}}}`)

	// Invalid definitions carry pointers into the document.
	_, _, err = e.svc.PutBlueprint(ctx, decodeBlueprint(t, `{"identifier": "bad", "schema": {"properties": {"x": {"type": "text"}}, "required": ["y"]}}`), false)
	wantValidation(t, err, "/schema/properties/x/type", "/schema/required/0")

	e.blueprint(serviceBP)
	list, err := e.svc.ListBlueprints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, bp := range list {
		names = append(names, bp.Identifier)
	}
	if want := []string{"node", "service", "team"}; !slices.Equal(names, want) {
		t.Fatalf("list = %v, want %v", names, want)
	}
	if _, err := e.svc.GetBlueprint(ctx, "missing"); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}

	// Delete: 409 while a relation of another blueprint targets it, or
	// while it has entities.
	if err := e.svc.DeleteBlueprint(ctx, "team"); !errors.Is(err, catalog.ErrInUse) {
		t.Fatalf("delete targeted blueprint: got %v, want ErrInUse", err)
	}
	e.put("service", `{"identifier": "a", "properties": {"language": "go"}}`)
	if err := e.svc.DeleteBlueprint(ctx, "service"); !errors.Is(err, catalog.ErrInUse) {
		t.Fatalf("delete blueprint with entities: got %v, want ErrInUse", err)
	}
	if _, err := e.svc.DeleteEntity(ctx, catalog.Ref{Blueprint: "service", Identifier: "a"}, false); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeleteBlueprint(ctx, "service"); err != nil {
		t.Fatalf("delete empty service: %v", err)
	}
	if err := e.svc.DeleteBlueprint(ctx, "team"); err != nil {
		t.Fatalf("delete team once nothing targets it: %v", err)
	}
	if err := e.svc.DeleteBlueprint(ctx, "node"); err != nil {
		t.Fatalf("delete self-referencing blueprint: %v", err)
	}
	if err := e.svc.DeleteBlueprint(ctx, "team"); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("delete twice: got %v, want ErrNotFound", err)
	}
	if list, _ := e.svc.ListBlueprints(ctx); len(list) != 0 {
		t.Fatalf("blueprints left: %d", len(list))
	}
	evs = e.events()
	if last := evs[len(evs)-1]; last.Type != catalog.EventBlueprintDeleted || last.Blueprint != "node" || string(last.After) != "null" {
		t.Fatalf("last event %+v", last)
	}
}

func testBlueprintInvalidation(t *testing.T, e *env) {
	ctx := e.ctx
	e.blueprint(teamBP)
	e.blueprint(`{"identifier": "group"}`)
	e.blueprint(serviceBP)
	e.put("team", `{"identifier": "payments"}`)
	e.put("service", `{"identifier": "a", "properties": {"language": "go", "tier": 1}, "relations": {"owner": "payments"}}`)
	e.put("service", `{"identifier": "b", "properties": {"language": "python", "tier": 2, "score": 1.5}}`)
	e.put("service", `{"identifier": "c", "properties": {"language": "go"}}`)
	stored, _ := e.svc.GetBlueprint(ctx, "service")
	events := len(e.events())

	tests := []struct {
		name   string
		mutate func(bp *catalog.Blueprint)
		paths  []string // offenders
		ok     []string // entities that must not be listed
	}{
		{"new required property and narrower enum", func(bp *catalog.Blueprint) {
			p := bp.Schema.Properties["language"]
			p.Enum = []any{"go"}
			bp.Schema.Properties["language"] = p
			bp.Schema.Required = append(bp.Schema.Required, "tier")
		}, []string{"/entities/b/properties/language", "/entities/c/properties/tier"}, []string{"/entities/a/"}},
		{"type change", func(bp *catalog.Blueprint) {
			bp.Schema.Properties["score"] = catalog.Property{Type: "integer"}
		}, []string{"/entities/b/properties/score"}, []string{"/entities/a/", "/entities/c/"}},
		{"removed property still in use", func(bp *catalog.Blueprint) {
			delete(bp.Schema.Properties, "tier")
		}, []string{"/entities/a/properties/tier", "/entities/b/properties/tier"}, []string{"/entities/c/"}},
		{"tighter maximum", func(bp *catalog.Blueprint) {
			p := bp.Schema.Properties["tier"]
			one := 1.0
			p.Maximum = &one
			bp.Schema.Properties["tier"] = p
		}, []string{"/entities/b/properties/tier"}, []string{"/entities/a/", "/entities/c/"}},
		{"relation retargeted while in use", func(bp *catalog.Blueprint) {
			bp.Relations["owner"] = catalog.Relation{Target: "group"}
		}, []string{"/entities/a/relations/owner"}, []string{"/entities/b/", "/entities/c/"}},
		{"relation made required", func(bp *catalog.Blueprint) {
			bp.Relations["owner"] = catalog.Relation{Target: "team", Required: true}
		}, []string{"/entities/b/relations/owner", "/entities/c/relations/owner"}, []string{"/entities/a/"}},
		{"relation removed while in use", func(bp *catalog.Blueprint) {
			delete(bp.Relations, "owner")
			delete(bp.MirrorProperties, "ownerSlack")
		}, []string{"/entities/a/relations/owner"}, []string{"/entities/b/", "/entities/c/"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			next := decodeBlueprint(t, serviceBP)
			tc.mutate(next)
			_, _, err := e.svc.PutBlueprint(ctx, next, false)
			verr := wantValidation(t, err, tc.paths...)
			for _, v := range verr.Violations {
				for _, bad := range tc.ok {
					if strings.HasPrefix(v.Path, bad) {
						t.Fatalf("valid entity listed: %v", v)
					}
				}
			}
			got, _ := e.svc.GetBlueprint(ctx, "service")
			if !reflect.DeepEqual(got, stored) {
				t.Fatalf("rejected change was applied:\n got %+v\nwant %+v", got, stored)
			}
			if n := len(e.events()); n != events {
				t.Fatalf("rejected change appended %d events", n-events)
			}
		})
	}

	// A compatible change goes through and leaves the entities alone.
	next := decodeBlueprint(t, serviceBP)
	next.Schema.Properties["oncall"] = catalog.Property{Type: "string", Format: "email"}
	if _, _, err := e.svc.PutBlueprint(ctx, next, false); err != nil {
		t.Fatalf("compatible change: %v", err)
	}
	if got := e.get("service", "b"); got.Properties["language"] != "python" {
		t.Fatalf("entity changed: %+v", got)
	}
}

// ---------------------------------------------------------------------------
// Entities

func testEntities(t *testing.T, e *env) {
	e.blueprint(teamBP)
	e.blueprint(serviceBP)
	alice := as("alice", "")
	bob := as("bob", "github")
	e.putAs(alice, "team", `{"identifier": "payments", "properties": {"slack": "#pay"}}`)

	in := decodeEntity(t, "service", `{"identifier": "checkout", "title": "Checkout", "team": ["payments"],
	  "properties": {"language": "go", "tier": 1, "tags": ["pci"]}, "relations": {"owner": "payments"}}`)
	out, created, err := e.svc.PutEntity(alice, in, true)
	if err != nil || !created {
		t.Fatalf("create: created=%v err=%v", created, err)
	}
	if out.Blueprint != "service" || out.CreatedBy != "alice" || out.UpdatedBy != "alice" || out.Datasource != "user:alice" ||
		!out.CreatedAt.Equal(t0) || !out.UpdatedAt.Equal(t0) {
		t.Fatalf("meta fields: %+v", out)
	}
	// computed properties come back on writes and reads
	if out.Properties["url"] != "https://svc/checkout" || out.Properties["ownerSlack"] != "#pay" {
		t.Fatalf("computed properties: %v", out.Properties)
	}
	got := e.get("service", "checkout")
	if got.Title != "Checkout" || !slices.Equal(got.Team, []string{"payments"}) || got.Properties["tier"] != 1.0 ||
		got.Relations["owner"] != "payments" || got.Properties["url"] != "https://svc/checkout" {
		t.Fatalf("get: %+v", got)
	}
	if _, _, err := e.svc.PutEntity(alice, decodeEntity(t, "service", `{"identifier": "checkout", "properties": {"language": "go"}}`), true); !errors.Is(err, catalog.ErrAlreadyExists) {
		t.Fatalf("create existing: got %v, want ErrAlreadyExists", err)
	}

	// Upsert replaces the whole document; creation metadata stays.
	e.clock.Advance(time.Minute)
	out, created, err = e.svc.PutEntity(bob, decodeEntity(t, "service", `{"identifier": "checkout", "properties": {"language": "rust", "tier": 2}}`), false)
	if err != nil || created {
		t.Fatalf("upsert: created=%v err=%v", created, err)
	}
	got = e.get("service", "checkout")
	if _, ok := got.Properties["tags"]; ok || got.Title != "" || len(got.Team) != 0 || len(got.Relations) != 0 {
		t.Fatalf("upsert did not replace: %+v", got)
	}
	if got.Properties["language"] != "rust" || got.CreatedBy != "alice" || got.UpdatedBy != "bob" || got.Datasource != "github" ||
		!got.CreatedAt.Equal(t0) || !got.UpdatedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("after upsert: %+v", got)
	}
	if got.Properties["ownerSlack"] != nil {
		t.Fatalf("mirror without relation = %v", got.Properties["ownerSlack"])
	}

	// Missing things.
	e.mustNotExist("service", "nope")
	if _, err := e.svc.GetEntity(e.ctx, catalog.Ref{Blueprint: "nope", Identifier: "x"}); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("get in unknown blueprint: %v", err)
	}
	if _, _, err := e.svc.PutEntity(e.ctx, decodeEntity(t, "nope", `{"identifier": "x"}`), false); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("put in unknown blueprint: got %v, want ErrNotFound", err)
	}
}

func testEntityValidation(t *testing.T, e *env) {
	e.blueprint(teamBP)
	e.blueprint(serviceBP)
	e.put("team", `{"identifier": "payments"}`)
	e.put("service", `{"identifier": "cart", "properties": {"language": "go"}}`)
	events := len(e.events())

	tests := []struct {
		name, entity string
		paths        []string
	}{
		{"type mismatch", `{"identifier": "x", "properties": {"language": "go", "tier": "one"}}`, []string{"/properties/tier"}},
		{"above maximum", `{"identifier": "x", "properties": {"language": "go", "tier": 7}}`, []string{"/properties/tier"}},
		{"not in enum", `{"identifier": "x", "properties": {"language": "cobol"}}`, []string{"/properties/language"}},
		{"required missing", `{"identifier": "x", "properties": {"tier": 1}}`, []string{"/properties/language"}},
		{"unknown property", `{"identifier": "x", "properties": {"language": "go", "nope": 1}}`, []string{"/properties/nope"}},
		{"bad timer", `{"identifier": "x", "properties": {"language": "go", "expiresAt": "tomorrow"}}`, []string{"/properties/expiresAt"}},
		{"bad array item", `{"identifier": "x", "properties": {"language": "go", "tags": ["a", 2]}}`, []string{"/properties/tags/1"}},
		{"bad identifier", `{"identifier": "-x", "properties": {"language": "go"}}`, []string{"/identifier"}},
		{"unknown relation", `{"identifier": "x", "properties": {"language": "go"}, "relations": {"nope": "a"}}`, []string{"/relations/nope"}},
		{"relation type", `{"identifier": "x", "properties": {"language": "go"}, "relations": {"owner": 5}}`, []string{"/relations/owner"}},
		{"dangling single relation", `{"identifier": "x", "properties": {"language": "go"}, "relations": {"owner": "ghost"}}`, []string{"/relations/owner"}},
		{"dangling many relation", `{"identifier": "x", "properties": {"language": "go"}, "relations": {"dependsOn": ["cart", "ghost"]}}`, []string{"/relations/dependsOn/1"}},
		{"relation to the wrong blueprint", `{"identifier": "x", "properties": {"language": "go"}, "relations": {"owner": "cart"}}`, []string{"/relations/owner"}},
		{"several problems", `{"identifier": "x", "properties": {"tier": 0, "score": "x"}}`, []string{"/properties/language", "/properties/tier", "/properties/score"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ent := decodeEntity(t, "service", tc.entity)
			_, _, err := e.svc.PutEntity(e.ctx, ent, false)
			wantValidation(t, err, tc.paths...)
			e.mustNotExist("service", ent.Identifier)
			if n := len(e.events()); n != events {
				t.Fatalf("rejected write appended %d events", n-events)
			}
		})
	}
	// An invalid replacement leaves the stored entity as it was.
	_, _, err := e.svc.PutEntity(e.ctx, decodeEntity(t, "service", `{"identifier": "cart", "properties": {"language": "go", "tier": 9}}`), false)
	wantValidation(t, err, "/properties/tier")
	if got := e.get("service", "cart"); got.Properties["tier"] != nil {
		t.Fatalf("rejected upsert was applied: %+v", got)
	}
}

func testPatch(t *testing.T, e *env) {
	e.blueprint(teamBP)
	e.blueprint(serviceBP)
	e.put("team", `{"identifier": "payments"}`)
	e.put("service", `{"identifier": "x", "title": "X", "team": ["payments"],
	  "properties": {"language": "go", "tier": 1, "tags": ["a", "b"], "meta": {"a": 1, "b": 2}},
	  "relations": {"owner": "payments", "dependsOn": []}}`)
	ref := catalog.Ref{Blueprint: "service", Identifier: "x"}
	patch := func(js string) (*catalog.Entity, error) {
		var p map[string]any
		if err := json.Unmarshal([]byte(js), &p); err != nil {
			t.Fatalf("decode patch: %v", err)
		}
		return e.svc.PatchEntity(e.ctx, ref, p)
	}

	e.clock.Advance(time.Minute)
	out, err := patch(`{"properties": {"tier": 2, "tags": null, "meta": {"b": null, "c": 3}}}`)
	if err != nil {
		t.Fatal(err)
	}
	got := e.get("service", "x")
	for _, x := range []*catalog.Entity{out, got} {
		if x.Properties["tier"] != 2.0 || x.Properties["language"] != "go" || x.Title != "X" || x.Relations["owner"] != "payments" {
			t.Fatalf("patch lost or missed fields: %+v", x)
		}
		if _, ok := x.Properties["tags"]; ok {
			t.Fatalf("null did not remove tags: %+v", x.Properties)
		}
		if !reflect.DeepEqual(x.Properties["meta"], map[string]any{"a": 1.0, "c": 3.0}) {
			t.Fatalf("nested merge: %v", x.Properties["meta"])
		}
	}
	if !got.CreatedAt.Equal(t0) || !got.UpdatedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("patch timestamps: %v %v", got.CreatedAt, got.UpdatedAt)
	}

	if _, err := patch(`{"title": "New", "team": null, "relations": {"owner": null}}`); err != nil {
		t.Fatal(err)
	}
	got = e.get("service", "x")
	if got.Title != "New" || len(got.Team) != 0 || got.Relations["owner"] != nil {
		t.Fatalf("patch of title/team/relation: %+v", got)
	}
	if res := e.search(`{"query": {"combinator": "and", "rules": [{"operator": "relatedTo", "blueprint": "team", "identifier": "payments", "direction": "upstream"}]}}`); len(res.Entities) != 0 {
		t.Fatalf("relation removed by patch still indexed: %v", ids(res.Entities))
	}

	events := len(e.events())
	stored := e.get("service", "x")
	bad := []struct{ name, patch, path string }{
		{"type mismatch", `{"properties": {"tier": "x"}}`, "/properties/tier"},
		{"required removed", `{"properties": {"language": null}}`, "/properties/language"},
		{"identifier", `{"identifier": "y"}`, "/identifier"},
		{"blueprint", `{"blueprint": "team"}`, "/blueprint"},
		{"server field", `{"createdAt": "2020-01-01T00:00:00Z"}`, "/createdAt"},
		{"dangling relation", `{"relations": {"dependsOn": ["ghost"]}}`, "/relations/dependsOn/0"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := patch(tc.patch)
			wantValidation(t, err, tc.path)
			if got := e.get("service", "x"); !reflect.DeepEqual(got, stored) {
				t.Fatalf("rejected patch changed the entity:\n got %+v\nwant %+v", got, stored)
			}
			if n := len(e.events()); n != events {
				t.Fatalf("rejected patch appended %d events", n-events)
			}
		})
	}
	if _, err := e.svc.PatchEntity(e.ctx, catalog.Ref{Blueprint: "service", Identifier: "missing"}, map[string]any{"title": "x"}); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("patch missing: got %v, want ErrNotFound", err)
	}
	// A patch that changes nothing is not a write.
	res, err := e.svc.Write(e.ctx, []catalog.WriteItem{{Mode: catalog.Patch, Entity: &catalog.Entity{Blueprint: "service", Identifier: "x"}, Patch: map[string]any{"title": "New", "properties": map[string]any{"tier": 2.0}}}})
	if err != nil || res[0].Status != catalog.StatusUnchanged {
		t.Fatalf("no-op patch: %+v %v", res, err)
	}
	if n := len(e.events()); n != events {
		t.Fatalf("no-op patch appended %d events", n-events)
	}
}

func testListPaging(t *testing.T, e *env) {
	e.blueprint(`{"identifier": "item", "schema": {"properties": {"n": {"type": "integer"}}}}`)
	var items []catalog.WriteItem
	for i := 24; i >= 0; i-- { // written out of order
		items = append(items, catalog.WriteItem{Entity: decodeEntity(t, "item", fmt.Sprintf(`{"identifier": "e%02d", "properties": {"n": %d}}`, i, i))})
	}
	if _, err := e.svc.Write(e.ctx, items); err != nil {
		t.Fatal(err)
	}
	var seen []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		page, err := e.svc.ListEntities(e.ctx, "item", after, 10)
		if err != nil {
			t.Fatal(err)
		}
		if page.Total != 25 {
			t.Fatalf("total = %d", page.Total)
		}
		if len(page.Entities) > 10 {
			t.Fatalf("page of %d", len(page.Entities))
		}
		seen = append(seen, ids(page.Entities)...)
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	var want []string
	for i := 0; i < 25; i++ {
		want = append(want, fmt.Sprintf("e%02d", i))
	}
	if !slices.Equal(seen, want) {
		t.Fatalf("listed %v", seen)
	}
	// limit 0 means the default page, not a crash
	page, err := e.svc.ListEntities(e.ctx, "item", "", 0)
	if err != nil || len(page.Entities) != 25 || page.Next != "" {
		t.Fatalf("limit 0: %v %v", page, err)
	}
	if _, err := e.svc.ListEntities(e.ctx, "nope", "", 10); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("list unknown blueprint: %v", err)
	}
}

// ---------------------------------------------------------------------------
// Bulk writes

func item(t *testing.T, bp, js string) catalog.WriteItem {
	return catalog.WriteItem{Mode: catalog.Upsert, Entity: decodeEntity(t, bp, js)}
}

func statuses(res []catalog.WriteResult) []string {
	out := make([]string, len(res))
	for i, r := range res {
		out[i] = r.Status
	}
	return out
}

func testBulkWrite(t *testing.T, e *env) {
	e.blueprint(teamBP)
	e.blueprint(serviceBP)
	ctx := e.ctx

	t.Run("references in reverse order resolve", func(t *testing.T) {
		res, err := e.svc.Write(ctx, []catalog.WriteItem{
			item(t, "service", `{"identifier": "a", "properties": {"language": "go"}, "relations": {"owner": "tm", "dependsOn": ["b"]}}`),
			item(t, "service", `{"identifier": "b", "properties": {"language": "go"}, "relations": {"dependsOn": ["c"]}}`),
			item(t, "service", `{"identifier": "c", "properties": {"language": "go"}, "relations": {"owner": "tm"}}`),
			item(t, "team", `{"identifier": "tm", "relations": {"parent": "root"}}`),
			item(t, "team", `{"identifier": "root"}`),
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Status != catalog.StatusCreated || r.Err != nil {
				t.Fatalf("item %d: %s %v", r.Index, r.Status, r.Err)
			}
		}
		up := e.search(`{"query": {"combinator": "and", "rules": [{"operator": "relatedTo", "blueprint": "service", "identifier": "c", "direction": "upstream", "depth": 2}]}}`)
		if got := sortedIDs(up.Entities); !slices.Equal(got, []string{"a", "b"}) {
			t.Fatalf("upstream of c = %v", got)
		}
	})

	t.Run("a failing item strands its dependants", func(t *testing.T) {
		events := len(e.events())
		res, err := e.svc.Write(ctx, []catalog.WriteItem{
			item(t, "service", `{"identifier": "x", "properties": {"language": "go"}, "relations": {"owner": "tz"}}`),
			item(t, "team", `{"identifier": "tz", "properties": {"size": "big"}}`),
			item(t, "service", `{"identifier": "y", "properties": {"language": "go"}, "relations": {"dependsOn": ["z", "x"]}}`),
			item(t, "service", `{"identifier": "z", "properties": {"language": "go"}}`),
			item(t, "nope", `{"identifier": "n"}`),
		})
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"error", "error", "error", "created", "error"}; !slices.Equal(statuses(res), want) {
			t.Fatalf("statuses %v, want %v", statuses(res), want)
		}
		wantValidation(t, res[0].Err, "/relations/owner")
		wantValidation(t, res[1].Err, "/properties/size")
		wantValidation(t, res[2].Err, "/relations/dependsOn/1")
		if !errors.Is(res[4].Err, catalog.ErrNotFound) {
			t.Fatalf("unknown blueprint item: %v", res[4].Err)
		}
		for _, r := range [][2]string{{"service", "x"}, {"team", "tz"}, {"service", "y"}} {
			e.mustNotExist(r[0], r[1])
		}
		e.get("service", "z")
		if n := len(e.events()); n != events+1 {
			t.Fatalf("%d events, want 1", n-events)
		}
	})

	t.Run("a failing update of an existing target strands nothing", func(t *testing.T) {
		e.put("team", `{"identifier": "t1"}`)
		res, err := e.svc.Write(ctx, []catalog.WriteItem{
			item(t, "service", `{"identifier": "s1", "properties": {"language": "go"}, "relations": {"owner": "t1"}}`),
			item(t, "team", `{"identifier": "t1", "relations": {"parent": "ghost"}}`),
		})
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"created", "error"}; !slices.Equal(statuses(res), want) {
			t.Fatalf("statuses %v (%v), want %v", statuses(res), res[0].Err, want)
		}
		if got := e.get("team", "t1"); got.Relations["parent"] != nil {
			t.Fatalf("failed update applied: %+v", got)
		}
	})

	t.Run("duplicates", func(t *testing.T) {
		res, err := e.svc.Write(ctx, []catalog.WriteItem{
			item(t, "service", `{"identifier": "d", "properties": {"language": "go"}}`),
			item(t, "service", `{"identifier": "d", "properties": {"language": "rust"}}`),
			item(t, "team", `{"identifier": "d"}`), // same identifier, other blueprint: fine
		})
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"created", "error", "created"}; !slices.Equal(statuses(res), want) {
			t.Fatalf("statuses %v, want %v", statuses(res), want)
		}
		wantValidation(t, res[1].Err, "/identifier")
		if got := e.get("service", "d"); got.Properties["language"] != "go" {
			t.Fatalf("duplicate overwrote the first: %+v", got)
		}
	})

	t.Run("create and patch modes", func(t *testing.T) {
		res, err := e.svc.Write(ctx, []catalog.WriteItem{
			{Mode: catalog.Create, Entity: decodeEntity(t, "service", `{"identifier": "d", "properties": {"language": "go"}}`)},
			{Mode: catalog.Create, Entity: decodeEntity(t, "service", `{"identifier": "fresh", "properties": {"language": "go"}}`)},
			{Mode: catalog.Patch, Entity: &catalog.Entity{Blueprint: "service", Identifier: "ghost"}, Patch: map[string]any{"title": "x"}},
			{Mode: catalog.Patch, Entity: &catalog.Entity{Blueprint: "service", Identifier: "fresh"}, Patch: map[string]any{"title": "x"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"error", "created", "error", "error"}; !slices.Equal(statuses(res), want) {
			t.Fatalf("statuses %v, want %v", statuses(res), want)
		}
		if !errors.Is(res[0].Err, catalog.ErrAlreadyExists) || !errors.Is(res[2].Err, catalog.ErrNotFound) {
			t.Fatalf("errors: %v / %v", res[0].Err, res[2].Err)
		}
		// one entity, one item: a second item for "fresh" is a duplicate
		wantValidation(t, res[3].Err, "/identifier")
	})

	t.Run("large batch across transactions", func(t *testing.T) {
		// Chains listed before their targets, a reference cycle, and a
		// chain whose last link is invalid: the batch is bigger than one
		// write transaction, so this checks that references still resolve
		// and failures still strand across them.
		const chain = 600
		var items []catalog.WriteItem
		for i := 0; i < chain; i++ {
			deps := `[]`
			if i+1 < chain {
				deps = fmt.Sprintf(`["ok%03d"]`, i+1)
			}
			items = append(items, item(t, "service", fmt.Sprintf(`{"identifier": "ok%03d", "properties": {"language": "go"}, "relations": {"dependsOn": %s}}`, i, deps)))
		}
		for i := 0; i < 300; i++ {
			lang := "go"
			if i == 299 {
				lang = "cobol"
			}
			deps := `[]`
			if i+1 < 300 {
				deps = fmt.Sprintf(`["bad%03d"]`, i+1)
			}
			items = append(items, item(t, "service", fmt.Sprintf(`{"identifier": "bad%03d", "properties": {"language": %q}, "relations": {"dependsOn": %s}}`, i, lang, deps)))
		}
		for i := 0; i < 3; i++ {
			items = append(items, item(t, "service", fmt.Sprintf(`{"identifier": "cyc%d", "properties": {"language": "go"}, "relations": {"dependsOn": ["cyc%d"]}}`, i, (i+1)%3)))
		}
		events := len(e.events())
		res, err := e.svc.Write(ctx, items)
		if err != nil {
			t.Fatal(err)
		}
		created := 0
		for i, r := range res {
			if r.Index != i || r.Identifier != items[i].Entity.Identifier {
				t.Fatalf("result %d is for item %d (%s)", i, r.Index, r.Identifier)
			}
			switch {
			case strings.HasPrefix(r.Identifier, "bad"):
				if r.Status != catalog.StatusError {
					t.Fatalf("%s: %s, want error", r.Identifier, r.Status)
				}
			case r.Status != catalog.StatusCreated:
				t.Fatalf("%s: %s %v", r.Identifier, r.Status, r.Err)
			default:
				created++
			}
		}
		wantValidation(t, res[chain+299].Err, "/properties/language")
		wantValidation(t, res[chain].Err, "/relations/dependsOn/0")
		if n := len(e.events()) - events; n != created || created != chain+3 {
			t.Fatalf("%d created, %d events", created, n)
		}
		up := e.search(`{"query": {"combinator": "and", "rules": [{"operator": "relatedTo", "blueprint": "service", "identifier": "ok599", "direction": "upstream", "depth": 3}]}}`)
		if got := sortedIDs(up.Entities); !slices.Equal(got, []string{"ok596", "ok597", "ok598"}) {
			t.Fatalf("upstream of ok599: %v", got)
		}
		e.mustNotExist("service", "bad000")
		if got := e.get("service", "cyc0"); !reflect.DeepEqual(got.Relations["dependsOn"], []string{"cyc1"}) {
			t.Fatalf("cycle: %+v", got)
		}
	})

	t.Run("more stored targets than one read carries", func(t *testing.T) {
		// 1,200 stored targets, checked in one transaction (more keys
		// than one MGET reads), and one that is missing.
		var items []catalog.WriteItem
		var deps []string
		for i := 0; i < 1200; i++ {
			id := fmt.Sprintf("dep%04d", i)
			items = append(items, item(t, "service", `{"identifier": "`+id+`", "properties": {"language": "go"}}`))
			deps = append(deps, id)
		}
		if res, err := e.svc.Write(ctx, items); err != nil || res[1199].Status != catalog.StatusCreated {
			t.Fatalf("targets: %v", err)
		}
		deps = append(deps[:700], append([]string{"dep-missing"}, deps[700:]...)...)
		list, _ := json.Marshal(deps)
		res, err := e.svc.Write(ctx, []catalog.WriteItem{item(t, "service", `{"identifier": "hub", "properties": {"language": "go"}, "relations": {"dependsOn": `+string(list)+`}}`)})
		if err != nil {
			t.Fatal(err)
		}
		wantValidation(t, res[0].Err, "/relations/dependsOn/700")
		deps = append(deps[:700], deps[701:]...)
		list, _ = json.Marshal(deps)
		res, err = e.svc.Write(ctx, []catalog.WriteItem{item(t, "service", `{"identifier": "hub", "properties": {"language": "go"}, "relations": {"dependsOn": `+string(list)+`}}`)})
		if err != nil || res[0].Status != catalog.StatusCreated {
			t.Fatalf("hub: %+v %v", res, err)
		}
	})

	t.Run("a relation retargeted by another replica", func(t *testing.T) {
		// Replica a compiled "link" with thing → team; replica b moves
		// the relation to "group" before a writes again: a's guess of
		// the targets is stale, the check must follow the stored one.
		e.blueprint(`{"identifier": "group"}`)
		e.blueprint(`{"identifier": "link", "relations": {"thing": {"target": "team"}}}`)
		e.put("team", `{"identifier": "shared"}`)
		e.put("group", `{"identifier": "g-only"}`)
		a := e.svc
		if _, _, err := a.PutEntity(ctx, decodeEntity(t, "link", `{"identifier": "l0", "relations": {"thing": "shared"}}`), false); err != nil {
			t.Fatal(err)
		}
		if _, err := a.DeleteEntity(ctx, catalog.Ref{Blueprint: "link", Identifier: "l0"}, false); err != nil {
			t.Fatal(err)
		}
		b := catalog.NewService(e.store, catalog.Options{Now: func() time.Time { return e.clock.Now().Add(time.Hour) }})
		if _, _, err := b.PutBlueprint(ctx, decodeBlueprint(t, `{"identifier": "link", "relations": {"thing": {"target": "group"}}}`), false); err != nil {
			t.Fatal(err)
		}
		_, _, err := a.PutEntity(ctx, decodeEntity(t, "link", `{"identifier": "l1", "relations": {"thing": "shared"}}`), false)
		wantValidation(t, err, "/relations/thing")
		if _, _, err := a.PutEntity(ctx, decodeEntity(t, "link", `{"identifier": "l2", "relations": {"thing": "g-only"}}`), false); err != nil {
			t.Fatalf("a target of the new blueprint: %v", err)
		}
	})

	t.Run("batch limit", func(t *testing.T) {
		items := make([]catalog.WriteItem, catalog.MaxBatch+1)
		_, err := e.svc.Write(ctx, items)
		wantValidation(t, err)
	})
}

func testUnchanged(t *testing.T, e *env) {
	e.blueprint(teamBP)
	e.blueprint(serviceBP)
	batch := func() []catalog.WriteItem {
		return []catalog.WriteItem{
			item(t, "team", `{"identifier": "payments", "title": "Payments", "team": ["payments"], "properties": {"slack": "#pay", "size": 4}}`),
			item(t, "service", `{"identifier": "a", "properties": {"language": "go", "tags": ["x", "y"], "meta": {"k": [1, {"z": true}]}}, "relations": {"owner": "payments", "dependsOn": ["b", "b"]}}`),
			item(t, "service", `{"identifier": "b", "properties": {"language": "go", "tier": 2}}`),
		}
	}
	res, err := e.svc.Write(e.ctx, batch())
	if err != nil || !slices.Equal(statuses(res), []string{"created", "created", "created"}) {
		t.Fatalf("first write: %v %v", statuses(res), err)
	}
	before := e.get("service", "a")
	events := len(e.events())
	e.clock.Advance(time.Hour)
	res, err = e.svc.Write(e.ctx, batch())
	if err != nil || !slices.Equal(statuses(res), []string{"unchanged", "unchanged", "unchanged"}) {
		t.Fatalf("same write again: %v %v", statuses(res), err)
	}
	if n := len(e.events()); n != events {
		t.Fatalf("unchanged entities appended %d events", n-events)
	}
	if after := e.get("service", "a"); !after.UpdatedAt.Equal(before.UpdatedAt) {
		t.Fatalf("unchanged entity rewritten: updatedAt %v -> %v", before.UpdatedAt, after.UpdatedAt)
	}
	// single upserts too
	_, created, err := e.svc.PutEntity(e.ctx, decodeEntity(t, "service", `{"identifier": "b", "properties": {"language": "go", "tier": 2}}`), false)
	if err != nil || created {
		t.Fatal(created, err)
	}
	if n := len(e.events()); n != events {
		t.Fatalf("unchanged upsert appended %d events", n-events)
	}
	// one changed item among unchanged ones: one event
	items := batch()
	items[2] = item(t, "service", `{"identifier": "b", "properties": {"language": "go", "tier": 3}}`)
	res, err = e.svc.Write(e.ctx, items)
	if err != nil || !slices.Equal(statuses(res), []string{"unchanged", "unchanged", "updated"}) {
		t.Fatalf("one change: %v %v", statuses(res), err)
	}
	evs := e.events()
	if len(evs) != events+1 || evs[len(evs)-1].Type != catalog.EventEntityUpdated || evs[len(evs)-1].Identifier != "b" {
		t.Fatalf("events: %v", eventTypes(evs[events:]))
	}
	// the same content from another source is a change (the datasource moves)
	res, err = e.svc.Write(as("sync", "k8s"), items[2:])
	if err != nil || res[0].Status != catalog.StatusUpdated || e.get("service", "b").Datasource != "k8s" {
		t.Fatalf("other datasource: %v %v", statuses(res), err)
	}
}

// ---------------------------------------------------------------------------
// Delete

func testDelete(t *testing.T, e *env) {
	ctx := e.ctx
	e.blueprint(teamBP)
	e.blueprint(`{"identifier": "service", "relations": {"owner": {"target": "team", "required": true}}}`)
	e.blueprint(`{"identifier": "deployment", "relations": {"service": {"target": "service", "required": true}}}`)
	e.blueprint(`{"identifier": "doc", "relations": {"about": {"target": "service"}, "mentions": {"target": "service", "many": true}}}`)
	for _, w := range [][2]string{
		{"team", `{"identifier": "t1"}`},
		{"team", `{"identifier": "t2"}`},
		{"team", `{"identifier": "t3", "relations": {"parent": "t1"}}`},
		{"service", `{"identifier": "s1", "relations": {"owner": "t1"}}`},
		{"service", `{"identifier": "s2", "relations": {"owner": "t1"}}`},
		{"service", `{"identifier": "s3", "relations": {"owner": "t2"}}`},
		{"deployment", `{"identifier": "d1", "relations": {"service": "s1"}}`},
		{"deployment", `{"identifier": "d2", "relations": {"service": "s3"}}`},
		{"doc", `{"identifier": "k1", "relations": {"about": "s1", "mentions": ["s1", "s3"]}}`},
		{"doc", `{"identifier": "k2", "relations": {"about": "s3", "mentions": ["s2"]}}`},
	} {
		e.put(w[0], w[1])
	}
	ref := func(bp, id string) catalog.Ref { return catalog.Ref{Blueprint: bp, Identifier: id} }

	// 409 while a required relation points here; nothing changes.
	events := len(e.events())
	_, err := e.svc.DeleteEntity(ctx, ref("team", "t1"), false)
	if !errors.Is(err, catalog.ErrInUse) || !strings.Contains(err.Error(), "service/s1") {
		t.Fatalf("delete t1: got %v, want ErrInUse naming service/s1", err)
	}
	e.get("team", "t1")
	if got := e.get("team", "t3"); got.Relations["parent"] != "t1" {
		t.Fatalf("refused delete detached t3: %+v", got)
	}
	if n := len(e.events()); n != events {
		t.Fatalf("refused delete appended %d events", n-events)
	}
	if _, err := e.svc.DeleteEntity(ctx, ref("team", "nope"), false); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("delete missing: %v", err)
	}
	if _, err := e.svc.DeleteEntity(ctx, ref("nope", "t1"), false); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("delete in unknown blueprint: %v", err)
	}

	// Cascade: t1 → s1, s2 (required owner) → d1 (required service).
	// Optional relations pointing at deleted entities are cleared.
	e.clock.Advance(time.Minute)
	deleted, err := e.svc.DeleteEntity(as("bob", ""), ref("team", "t1"), true)
	if err != nil {
		t.Fatal(err)
	}
	if len(deleted) == 0 || deleted[0] != ref("team", "t1") {
		t.Fatalf("deleted %v: the requested entity must come first", deleted)
	}
	var got []string
	for _, r := range deleted {
		got = append(got, r.Blueprint+"/"+r.Identifier)
	}
	sort.Strings(got)
	if want := []string{"deployment/d1", "service/s1", "service/s2", "team/t1"}; !slices.Equal(got, want) {
		t.Fatalf("deleted %v, want %v", got, want)
	}
	for _, r := range deleted {
		e.mustNotExist(r.Blueprint, r.Identifier)
	}
	if k1 := e.get("doc", "k1"); k1.Relations["about"] != nil || !reflect.DeepEqual(k1.Relations["mentions"], []string{"s3"}) || k1.UpdatedBy != "bob" {
		t.Fatalf("k1 not detached: %+v", k1)
	}
	if k2 := e.get("doc", "k2"); k2.Relations["about"] != "s3" || !reflect.DeepEqual(k2.Relations["mentions"], []string{}) {
		t.Fatalf("k2 not detached: %+v", k2)
	}
	if t3 := e.get("team", "t3"); t3.Relations["parent"] != nil {
		t.Fatalf("t3 not detached: %+v", t3)
	}
	evs := e.events()[events:]
	counts := map[string]int{}
	for _, ev := range evs {
		counts[ev.Type]++
		if ev.Actor != "bob" {
			t.Fatalf("event actor %q", ev.Actor)
		}
		if ev.Type == catalog.EventEntityDeleted && (string(ev.After) != "null" || string(ev.Before) == "null") {
			t.Fatalf("delete event before/after: %s / %s", ev.Before, ev.After)
		}
	}
	if counts[catalog.EventEntityDeleted] != 4 || counts[catalog.EventEntityUpdated] != 3 || len(evs) != 7 {
		t.Fatalf("events %v", eventTypes(evs))
	}

	// The indexes forgot the deleted entities and their edges.
	page := e.search(`{"query": {"combinator": "and", "rules": [{"property": "$blueprint", "operator": "in", "value": ["service", "deployment", "team"]}]}}`)
	if got := sortedIDs(page.Entities); !slices.Equal(got, []string{"d2", "s3", "t2", "t3"}) || page.Total != 4 {
		t.Fatalf("left: %v (total %d)", got, page.Total)
	}
	for _, q := range []string{
		`{"operator": "relatedTo", "blueprint": "service", "identifier": "s1", "direction": "upstream"}`,
		`{"operator": "relatedTo", "blueprint": "team", "identifier": "t1", "direction": "upstream"}`,
		`{"operator": "relatedTo", "blueprint": "service", "identifier": "s2", "direction": "upstream"}`,
	} {
		if res := e.search(`{"query": {"combinator": "and", "rules": [` + q + `]}}`); len(res.Entities) != 0 {
			t.Fatalf("%s: %v", q, ids(res.Entities))
		}
	}
	// A re-created entity starts with no referrers.
	e.put("team", `{"identifier": "t1"}`)
	if _, err := e.svc.DeleteEntity(ctx, ref("team", "t1"), false); err != nil {
		t.Fatalf("delete re-created t1: %v", err)
	}
	// Deleting an entity removes its own outgoing edges.
	if _, err := e.svc.DeleteEntity(ctx, ref("deployment", "d2"), false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.DeleteEntity(ctx, ref("doc", "k1"), false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.DeleteEntity(ctx, ref("doc", "k2"), false); err != nil {
		t.Fatal(err)
	}
	if d, err := e.svc.DeleteEntity(ctx, ref("service", "s3"), false); err != nil || len(d) != 1 {
		t.Fatalf("delete s3 once nothing points at it: %v %v", d, err)
	}
}

// ---------------------------------------------------------------------------
// History and events

func testHistoryAndEvents(t *testing.T, e *env) {
	ctx := catalog.WithActor(context.Background(), catalog.Actor{ID: "alice@example.com"})
	if _, _, err := e.svc.PutBlueprint(ctx, decodeBlueprint(t, `{"identifier": "service", "schema": {"properties": {"tier": {"type": "integer"}}}}`), false); err != nil {
		t.Fatal(err)
	}
	ref := catalog.Ref{Blueprint: "service", Identifier: "a"}
	write := func(fn func() error) {
		t.Helper()
		e.clock.Advance(time.Second)
		if err := fn(); err != nil {
			t.Fatal(err)
		}
	}
	write(func() error {
		_, _, err := e.svc.PutEntity(ctx, decodeEntity(t, "service", `{"identifier": "a", "properties": {"tier": 1}}`), true)
		return err
	})
	write(func() error {
		_, _, err := e.svc.PutEntity(ctx, decodeEntity(t, "service", `{"identifier": "a", "properties": {"tier": 2}}`), false)
		return err
	})
	write(func() error {
		_, err := e.svc.PatchEntity(ctx, ref, map[string]any{"properties": map[string]any{"tier": 3.0}})
		return err
	})
	write(func() error { // unchanged: no event
		_, err := e.svc.PatchEntity(ctx, ref, map[string]any{"properties": map[string]any{"tier": 3.0}})
		return err
	})

	hist, err := e.svc.History(e.ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	wantTypes := []string{catalog.EventEntityCreated, catalog.EventEntityUpdated, catalog.EventEntityUpdated}
	if len(hist) != 3 {
		t.Fatalf("history: %v", eventTypes(hist))
	}
	tiers := []float64{1, 2, 3}
	for i, ev := range hist {
		if ev.Type != wantTypes[i] || ev.Actor != "alice@example.com" || ev.Blueprint != "service" || ev.Identifier != "a" {
			t.Fatalf("history[%d] = %+v", i, ev)
		}
		if !ev.At.Equal(t0.Add(time.Duration(i+1) * time.Second)) {
			t.Fatalf("history[%d].At = %v", i, ev.At)
		}
		if got := props(t, ev.After)["tier"]; got != tiers[i] {
			t.Fatalf("history[%d].after.tier = %v", i, got)
		}
		if i == 0 {
			if string(ev.Before) != "null" {
				t.Fatalf("created event has before %s", ev.Before)
			}
		} else if got := props(t, ev.Before)["tier"]; got != tiers[i-1] {
			t.Fatalf("history[%d].before.tier = %v", i, got)
		}
	}

	write(func() error {
		_, err := e.svc.DeleteEntity(ctx, ref, false)
		return err
	})
	if _, err := e.svc.History(e.ctx, ref); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("history of a deleted entity: %v", err)
	}

	evs := e.events()
	want := []string{"blueprint.created service/", "entity.created service/a", "entity.updated service/a", "entity.updated service/a", "entity.deleted service/a"}
	if got := eventTypes(evs); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	for i, ev := range evs {
		if ev.ID == "" || ev.Actor != "alice@example.com" || ev.At.IsZero() {
			t.Fatalf("event %d: %+v", i, ev)
		}
		if i > 0 && !streamIDLess(evs[i-1].ID, ev.ID) {
			t.Fatalf("event ids not increasing: %s then %s", evs[i-1].ID, ev.ID)
		}
	}
	if last := evs[len(evs)-1]; string(last.After) != "null" || props(t, last.Before)["tier"] != 3.0 {
		t.Fatalf("delete event: %+v", last)
	}

	// The stream's bounds.
	if oldest, newest, err := e.svc.EventBounds(e.ctx); err != nil || oldest != evs[0].ID || newest != evs[len(evs)-1].ID {
		t.Fatalf("bounds %s..%s (%v), want %s..%s", oldest, newest, err, evs[0].ID, evs[len(evs)-1].ID)
	}
	if !catalog.EventIDBefore(evs[0].ID, evs[1].ID) || catalog.EventIDBefore(evs[1].ID, evs[0].ID) || !catalog.EventIDBefore("0", evs[0].ID) {
		t.Fatalf("EventIDBefore disagrees with the stream's order")
	}

	// Resume after an id.
	rest, err := e.svc.Events(e.ctx, evs[1].ID, 100, 0)
	if err != nil || !slices.Equal(eventTypes(rest), want[2:]) {
		t.Fatalf("events after %s: %v %v", evs[1].ID, eventTypes(rest), err)
	}
	two, err := e.svc.Events(e.ctx, "", 2, 0)
	if err != nil || !slices.Equal(eventTypes(two), want[:2]) {
		t.Fatalf("first two events: %v %v", eventTypes(two), err)
	}
	if none, err := e.svc.Events(e.ctx, "$", 10, 0); err != nil || len(none) != 0 {
		t.Fatalf("events after $: %v %v", none, err)
	}

	// A blocking read wakes up for a new event.
	lastID := evs[len(evs)-1].ID
	done := make(chan error, 1)
	go func() {
		time.Sleep(100 * time.Millisecond)
		_, _, err := e.svc.PutEntity(ctx, decodeEntity(t, "service", `{"identifier": "b"}`), false)
		done <- err
	}()
	got, err := e.svc.Events(e.ctx, lastID, 10, 5*time.Second)
	if err != nil || len(got) != 1 || got[0].Type != catalog.EventEntityCreated || got[0].Identifier != "b" {
		t.Fatalf("blocking read: %v %v", eventTypes(got), err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// With nothing new, a blocking read returns empty once block passes.
	start := time.Now()
	none, err := e.svc.Events(e.ctx, got[0].ID, 10, 150*time.Millisecond)
	if waited := time.Since(start); err != nil || len(none) != 0 || waited < 150*time.Millisecond || waited > 10*time.Second {
		t.Fatalf("idle blocking read: %v %v after %s", eventTypes(none), err, waited)
	}
}

func streamIDLess(a, b string) bool {
	parse := func(s string) (int64, int64) {
		ms, seq, _ := strings.Cut(s, "-")
		x, _ := strconv.ParseInt(ms, 10, 64)
		y, _ := strconv.ParseInt(seq, 10, 64)
		return x, y
	}
	am, as := parse(a)
	bm, bs := parse(b)
	return am < bm || (am == bm && as < bs)
}

// ---------------------------------------------------------------------------
// Search

// seedCatalog writes two teams and five services, one minute apart:
//
//	payments  t0+0  team  slack #pay  size 5
//	platform  t0+1  team  slack #plat size 3
//	db        t0+2  rust   tier 2 score 3                      team []            (k8s)
//	pricing   t0+3  go     tier 3 score 5   tags []            owner platform  dependsOn [db]           (k8s)
//	cart      t0+4  python tier 2 score 7   tags [critical]    owner payments  dependsOn [pricing]  expires in a year, enabled false
//	checkout  t0+5  go     tier 1 score 9.5 tags [pci critical] owner payments dependsOn [cart pricing]  expired a day ago, enabled true
//	search    t0+6  python tier 1 score 6   tags [search]      owner platform   team [platform payments]
//
// and leaves the clock at t0+7m.
func seedCatalog(t *testing.T, e *env) {
	e.blueprint(teamBP)
	e.blueprint(serviceBP)
	k8s := as("k8s-sync", "k8s")
	past := t0.Add(-24 * time.Hour).Format(time.RFC3339)
	future := t0.Add(365 * 24 * time.Hour).Format(time.RFC3339)
	writes := []struct {
		ctx    context.Context
		bp, js string
	}{
		{e.ctx, "team", `{"identifier": "payments", "title": "Payments", "properties": {"slack": "#pay", "size": 5}}`},
		{e.ctx, "team", `{"identifier": "platform", "title": "Platform", "properties": {"slack": "#plat", "size": 3}}`},
		{k8s, "service", `{"identifier": "db", "team": [], "properties": {"language": "rust", "tier": 2, "score": 3}}`},
		{k8s, "service", `{"identifier": "pricing", "title": "Pricing Engine", "team": ["platform"],
		   "properties": {"language": "go", "tier": 3, "tags": [], "score": 5},
		   "relations": {"owner": "platform", "dependsOn": ["db"]}}`},
		{e.ctx, "service", `{"identifier": "cart", "title": "Cart", "team": ["payments"],
		   "properties": {"language": "python", "tier": 2, "tags": ["critical"], "enabled": false, "score": 7, "expiresAt": "` + future + `"},
		   "relations": {"owner": "payments", "dependsOn": ["pricing"]}}`},
		{e.ctx, "service", `{"identifier": "checkout", "title": "Checkout", "team": ["payments"],
		   "properties": {"language": "go", "tier": 1, "tags": ["pci", "critical"], "enabled": true, "score": 9.5, "expiresAt": "` + past + `"},
		   "relations": {"owner": "payments", "dependsOn": ["cart", "pricing"]}}`},
		{e.ctx, "service", `{"identifier": "search", "title": "Search", "team": ["platform", "payments"],
		   "properties": {"language": "python", "tier": 1, "tags": ["search"], "score": 6},
		   "relations": {"owner": "platform"}}`},
	}
	for _, w := range writes {
		e.putAs(w.ctx, w.bp, w.js)
		e.clock.Advance(time.Minute)
	}
}

func at(minutes int) string { return t0.Add(time.Duration(minutes) * time.Minute).Format(time.RFC3339) }

func testSearchOperators(t *testing.T, e *env) {
	seedCatalog(t, e)
	checkScopedOperators(t, e)
	checkGlobalSearches(t, e)
}

// testSearchAcrossIndexLayouts changes the service blueprint's cardinality
// hints, which re-indexes its entities in the other layout (per-value sets
// or one pair zset), and checks every operator after each change.
func testSearchAcrossIndexLayouts(t *testing.T, e *env) {
	seedCatalog(t, e)
	hinted := strings.NewReplacer(
		`"language": {"type": "string",`, `"language": {"type": "string", "cardinality": "high",`,
		`"tags": {"type": "array",`, `"tags": {"type": "array", "cardinality": "high",`,
		`"format": "timer"}`, `"format": "timer", "cardinality": "low"}`,
	).Replace(serviceBP)
	if hinted == serviceBP || strings.Count(hinted, "cardinality") != 3 {
		t.Fatal("the hinted blueprint did not change")
	}
	for _, layout := range []struct {
		name, bp string
		high     bool // language, tags pair-indexed; expiresAt in sets
	}{{"hinted", hinted, true}, {"default again", serviceBP, false}, {"hinted again", hinted, true}} {
		e.blueprint(layout.bp)
		t.Run(layout.name, func(t *testing.T) {
			// While the indexes are backfilled, searches are answered
			// without them; after, with them.
			if bp, err := e.svc.GetBlueprint(e.ctx, "service"); err != nil || bp.Change == nil || bp.Change.Phase != catalog.PhaseBackfilling {
				t.Fatalf("after a cardinality change: %+v, %v; want a backfill in progress", bp, err)
			}
			checkScopedOperators(t, e)
			e.settle()
			checkScopedOperators(t, e)
			for prop, pairs := range map[string]int64{"language": 5, "tags": 4, "expiresAt": 2} {
				high := layout.high == (prop != "expiresAt")
				gotPairs := e.rdb.ZCard(e.ctx, e.prefix+"|ix|service|"+prop+"|x").Val()
				sets := e.rdb.Keys(e.ctx, e.prefix+"|ix|service|"+prop+"|=|*").Val()
				if high && (gotPairs != pairs || len(sets) != 0) {
					t.Errorf("%s high: %d pair members, want %d; value sets %v, want none", prop, gotPairs, pairs, sets)
				}
				if !high && (gotPairs != 0 || len(sets) == 0) {
					t.Errorf("%s low: %d pair members, want none; %d value sets", prop, gotPairs, len(sets))
				}
			}
		})
	}
}

// testUpgradeIndexes loses every index key, as if the catalog had been
// written under an older layout, and checks that UpgradeIndexes rebuilds
// them all, once.
func testUpgradeIndexes(t *testing.T, e *env) {
	seedCatalog(t, e)
	if n, err := e.store.UpgradeIndexes(e.ctx); err != nil || n != 7 {
		t.Fatalf("first upgrade: %d entities re-indexed, %v; want all 7", n, err)
	}
	if n, err := e.store.UpgradeIndexes(e.ctx); err != nil || n != 0 {
		t.Fatalf("second upgrade: %d entities re-indexed, %v; want none", n, err)
	}
	stale := e.rdb.Keys(e.ctx, e.prefix+"|ix|*").Val()
	if len(stale) < 10 {
		t.Fatalf("only %d index keys: %v", len(stale), stale)
	}
	e.rdb.Del(e.ctx, append(stale, e.prefix+"|indexlayout")...)
	e.rdb.SAdd(e.ctx, e.prefix+"|ix|service|$title|=|sCart", "cart") // an old-layout key
	if page := e.search(`{"query": {"combinator": "and", "rules": [{"property": "language", "operator": "=", "value": "go"}]}}`); page.Total != 0 {
		t.Fatalf("without indexes the search found %d: the test does not test", page.Total)
	}
	if n, err := e.store.UpgradeIndexes(e.ctx); err != nil || n != 7 {
		t.Fatalf("upgrade: %d entities re-indexed, %v; want all 7", n, err)
	}
	if e.rdb.Exists(e.ctx, e.prefix+"|ix|service|$title|=|sCart").Val() != 0 {
		t.Error("the old-layout key survived the upgrade")
	}
	checkScopedOperators(t, e)
	checkGlobalSearches(t, e)
}

// testReindexManyEntities changes the layout of a blueprint with more
// entities than one read carries: all of them are re-indexed.
func testReindexManyEntities(t *testing.T, e *env) {
	const n = 2500
	e.blueprint(`{"identifier": "host", "schema": {"properties": {"name": {"type": "string"}}}}`)
	var items []catalog.WriteItem
	for i := 0; i < n; i++ {
		items = append(items, item(t, "host", fmt.Sprintf(`{"identifier": "h%04d", "properties": {"name": "n%d"}}`, i, i%7)))
	}
	if _, err := e.svc.Write(e.ctx, items); err != nil {
		t.Fatal(err)
	}
	for _, hint := range []string{"high", "low"} {
		e.blueprint(`{"identifier": "host", "schema": {"properties": {"name": {"type": "string", "cardinality": "` + hint + `"}}}}`)
		for _, when := range []string{"during the backfill", "after it"} {
			page := e.search(`{"query": {"combinator": "and", "rules": [{"property": "name", "operator": "=", "value": "n3"}]}, "limit": 1000}`)
			if want := (n - 3 + 6) / 7; page.Total != want {
				t.Fatalf("cardinality %s, %s: name = n3 found %d, want %d", hint, when, page.Total, want)
			}
			e.settle()
		}
		pairs := e.rdb.ZCard(e.ctx, e.prefix+"|ix|host|name|x").Val()
		if (hint == "high") != (pairs == n) {
			t.Fatalf("cardinality %s: %d pair members", hint, pairs)
		}
	}
}

// checkScopedOperators runs every operator over the seeded services: each
// rule is and-ed with $blueprint = service.
func checkScopedOperators(t *testing.T, e *env) {
	scoped := []struct {
		name, rule string
		want       []string
	}{
		{"= string", `{"property": "language", "operator": "=", "value": "go"}`, []string{"checkout", "pricing"}},
		{"= boolean true", `{"property": "enabled", "operator": "=", "value": true}`, []string{"checkout"}},
		{"= boolean false", `{"property": "enabled", "operator": "=", "value": false}`, []string{"cart"}},
		{"= number", `{"property": "score", "operator": "=", "value": 9.5}`, []string{"checkout"}},
		{"= array element", `{"property": "tags", "operator": "=", "value": "critical"}`, []string{"cart", "checkout"}},
		{"= type mismatch never matches", `{"property": "tier", "operator": "=", "value": "1"}`, nil},
		{"!=", `{"property": "language", "operator": "!=", "value": "go"}`, []string{"cart", "db", "search"}},
		{"!= matches missing", `{"property": "enabled", "operator": "!=", "value": true}`, []string{"cart", "db", "pricing", "search"}},
		{"<", `{"property": "tier", "operator": "<", "value": 2}`, []string{"checkout", "search"}},
		{"<=", `{"property": "tier", "operator": "<=", "value": 2}`, []string{"cart", "checkout", "db", "search"}},
		{">", `{"property": "tier", "operator": ">", "value": 2}`, []string{"pricing"}},
		{">=", `{"property": "tier", "operator": ">=", "value": 2}`, []string{"cart", "db", "pricing"}},
		{"> fractional", `{"property": "score", "operator": ">", "value": 6.5}`, []string{"cart", "checkout"}},
		{"< string", `{"property": "language", "operator": "<", "value": "python"}`, []string{"checkout", "pricing"}},
		{">= string", `{"property": "language", "operator": ">=", "value": "python"}`, []string{"cart", "db", "search"}},
		{"in", `{"property": "language", "operator": "in", "value": ["go", "rust"]}`, []string{"checkout", "db", "pricing"}},
		{"in numbers", `{"property": "tier", "operator": "in", "value": [1, 3]}`, []string{"checkout", "pricing", "search"}},
		{"notIn", `{"property": "language", "operator": "notIn", "value": ["go", "rust"]}`, []string{"cart", "search"}},
		{"notIn array", `{"property": "tags", "operator": "notIn", "value": ["pci", "search"]}`, []string{"cart", "db", "pricing"}},
		{"contains array", `{"property": "tags", "operator": "contains", "value": "critical"}`, []string{"cart", "checkout"}},
		{"contains substring", `{"property": "language", "operator": "contains", "value": "yth"}`, []string{"cart", "search"}},
		{"containsAny array", `{"property": "tags", "operator": "containsAny", "value": ["pci", "search"]}`, []string{"checkout", "search"}},
		{"containsAny substring", `{"property": "language", "operator": "containsAny", "value": ["us", "g"]}`, []string{"checkout", "db", "pricing"}},
		{"beginsWith", `{"property": "language", "operator": "beginsWith", "value": "py"}`, []string{"cart", "search"}},
		{"beginsWith array", `{"property": "tags", "operator": "beginsWith", "value": "cr"}`, []string{"cart", "checkout"}},
		{"endsWith", `{"property": "language", "operator": "endsWith", "value": "st"}`, []string{"db"}},
		{"isEmpty", `{"property": "tags", "operator": "isEmpty"}`, []string{"db", "pricing"}},
		{"isNotEmpty", `{"property": "tags", "operator": "isNotEmpty"}`, []string{"cart", "checkout", "search"}},
		{"between array", `{"property": "tier", "operator": "between", "value": [2, 3]}`, []string{"cart", "db", "pricing"}},
		{"between object", `{"property": "tier", "operator": "between", "value": {"from": 1, "to": 1}}`, []string{"checkout", "search"}},
		{"between strings", `{"property": "language", "operator": "between", "value": ["p", "q"]}`, []string{"cart", "search"}},
		{"isExpired", `{"property": "expiresAt", "operator": "isExpired"}`, []string{"checkout"}},
		{"isNotExpired", `{"property": "expiresAt", "operator": "isNotExpired"}`, []string{"cart"}},
		{"$identifier =", `{"property": "$identifier", "operator": "=", "value": "checkout"}`, []string{"checkout"}},
		{"$identifier in", `{"property": "$identifier", "operator": "in", "value": ["db", "cart", "nope"]}`, []string{"cart", "db"}},
		{"$identifier beginsWith", `{"property": "$identifier", "operator": "beginsWith", "value": "c"}`, []string{"cart", "checkout"}},
		{"$identifier between", `{"property": "$identifier", "operator": "between", "value": {"from": "a", "to": "d"}}`, []string{"cart", "checkout"}},
		{"$identifier >", `{"property": "$identifier", "operator": ">", "value": "db"}`, []string{"pricing", "search"}},
		{"$identifier <=", `{"property": "$identifier", "operator": "<=", "value": "db"}`, []string{"cart", "checkout", "db"}},
		{"$title =", `{"property": "$title", "operator": "=", "value": "Cart"}`, []string{"cart"}},
		{"$title = empty", `{"property": "$title", "operator": "=", "value": ""}`, []string{"db"}},
		{"$title <", `{"property": "$title", "operator": "<", "value": "D"}`, []string{"cart", "checkout", "db"}},
		{"$title beginsWith", `{"property": "$title", "operator": "beginsWith", "value": "Pricing"}`, []string{"pricing"}},
		{"$title contains", `{"property": "$title", "operator": "contains", "value": "Eng"}`, []string{"pricing"}},
		{"$title isEmpty", `{"property": "$title", "operator": "isEmpty"}`, []string{"db"}},
		{"$team =", `{"property": "$team", "operator": "=", "value": "payments"}`, []string{"cart", "checkout", "search"}},
		{"$team contains", `{"property": "$team", "operator": "contains", "value": "platform"}`, []string{"pricing", "search"}},
		{"$team containsAny", `{"property": "$team", "operator": "containsAny", "value": ["platform", "x"]}`, []string{"pricing", "search"}},
		{"$team isEmpty", `{"property": "$team", "operator": "isEmpty"}`, []string{"db"}},
		{"$team !=", `{"property": "$team", "operator": "!=", "value": "payments"}`, []string{"db", "pricing"}},
		{"$datasource =", `{"property": "$datasource", "operator": "=", "value": "k8s"}`, []string{"db", "pricing"}},
		{"$datasource in", `{"property": "$datasource", "operator": "in", "value": ["user:alice"]}`, []string{"cart", "checkout", "search"}},
		{"$createdAt >", `{"property": "$createdAt", "operator": ">", "value": "` + at(3) + `"}`, []string{"cart", "checkout", "search"}},
		{"$createdAt <", `{"property": "$createdAt", "operator": "<", "value": "` + at(3) + `"}`, []string{"db"}},
		{"$createdAt =", `{"property": "$createdAt", "operator": "=", "value": "` + at(4) + `"}`, []string{"cart"}},
		{"$createdAt between", `{"property": "$createdAt", "operator": "between", "value": ["` + at(2) + `", "` + at(3) + `"]}`, []string{"db", "pricing"}},
		{"$updatedAt >=", `{"property": "$updatedAt", "operator": ">=", "value": "` + at(5) + `"}`, []string{"checkout", "search"}},
		{"$updatedAt <=", `{"property": "$updatedAt", "operator": "<=", "value": "` + at(2) + `"}`, []string{"db"}},
		{"calculation =", `{"property": "url", "operator": "=", "value": "https://svc/cart"}`, []string{"cart"}},
		{"calculation endsWith", `{"property": "url", "operator": "endsWith", "value": "out"}`, []string{"checkout"}},
		{"mirror =", `{"property": "ownerSlack", "operator": "=", "value": "#pay"}`, []string{"cart", "checkout"}},
		{"mirror isEmpty", `{"property": "ownerSlack", "operator": "isEmpty"}`, []string{"db"}},
		{"relation name as property", `{"property": "owner", "operator": "=", "value": "platform"}`, []string{"pricing", "search"}},
		{"nested or inside and", `{"combinator": "and", "rules": [
			{"combinator": "or", "rules": [{"property": "tier", "operator": "<=", "value": 1}, {"property": "$team", "operator": "contains", "value": "platform"}]},
			{"property": "language", "operator": "!=", "value": "python"}]}`, []string{"checkout", "pricing"}},
		{"nested and inside or", `{"combinator": "or", "rules": [
			{"property": "language", "operator": "=", "value": "rust"},
			{"combinator": "and", "rules": [{"property": "tier", "operator": "=", "value": 1}, {"property": "language", "operator": "=", "value": "python"}]}]}`, []string{"db", "search"}},
		{"empty or matches nothing", `{"combinator": "or", "rules": []}`, nil},
		{"empty and matches everything", `{"combinator": "and", "rules": []}`, []string{"cart", "checkout", "db", "pricing", "search"}},
	}
	for _, tc := range scoped {
		t.Run(tc.name, func(t *testing.T) {
			q := `{"query": {"combinator": "and", "rules": [{"property": "$blueprint", "operator": "=", "value": "service"}, ` + tc.rule + `]}, "limit": 1000}`
			page := e.search(q)
			if got := sortedIDs(page.Entities); !equalStrings(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			if page.Total != len(tc.want) || page.Next != "" {
				t.Fatalf("total %d next %q, want %d and no next page", page.Total, page.Next, len(tc.want))
			}
		})
	}

}

// checkGlobalSearches runs searches over the whole seeded catalog.
func checkGlobalSearches(t *testing.T, e *env) {
	rel := func(bp, id, dir, extra string) string {
		return `{"operator": "relatedTo", "blueprint": "` + bp + `", "identifier": "` + id + `", "direction": "` + dir + `"` + extra + `}`
	}
	global := []struct {
		name, query string
		want        []string
	}{
		{"no query", `null`, []string{"cart", "checkout", "db", "payments", "platform", "pricing", "search"}},
		{"$blueprint =", `{"property": "$blueprint", "operator": "=", "value": "team"}`, []string{"payments", "platform"}},
		{"$blueprint !=", `{"property": "$blueprint", "operator": "!=", "value": "service"}`, []string{"payments", "platform"}},
		{"$blueprint notIn", `{"property": "$blueprint", "operator": "notIn", "value": ["team"]}`, []string{"cart", "checkout", "db", "pricing", "search"}},
		{"$blueprint beginsWith", `{"property": "$blueprint", "operator": "beginsWith", "value": "te"}`, []string{"payments", "platform"}},
		{"property of one blueprint only", `{"property": "size", "operator": ">=", "value": 4}`, []string{"payments"}},
		{"!= on a property other blueprints lack", `{"property": "size", "operator": "!=", "value": 5}`, []string{"cart", "checkout", "db", "platform", "pricing", "search"}},
		{"isEmpty on a property other blueprints lack", `{"property": "language", "operator": "isEmpty"}`, []string{"payments", "platform"}},
		{"or across blueprints", `{"combinator": "or", "rules": [{"property": "language", "operator": "=", "value": "rust"}, {"property": "$identifier", "operator": "=", "value": "payments"}]}`, []string{"db", "payments"}},
		{"$createdAt across blueprints", `{"property": "$createdAt", "operator": "<", "value": "` + at(3) + `"}`, []string{"db", "payments", "platform"}},
		{"upstream", rel("team", "payments", "upstream", ""), []string{"cart", "checkout"}},
		{"upstream through relation", rel("team", "payments", "upstream", `, "relation": "owner"`), []string{"cart", "checkout"}},
		{"upstream through another relation", rel("team", "payments", "upstream", `, "relation": "dependsOn"`), nil},
		{"upstream of a service", rel("service", "pricing", "upstream", ""), []string{"cart", "checkout"}},
		{"upstream depth 1", rel("service", "db", "upstream", ""), []string{"pricing"}},
		{"upstream depth 2", rel("service", "db", "upstream", `, "depth": 2`), []string{"cart", "checkout", "pricing"}},
		{"upstream depth 3", rel("service", "db", "upstream", `, "depth": 3`), []string{"cart", "checkout", "pricing"}},
		{"upstream of a leaf", rel("service", "checkout", "upstream", ""), nil},
		{"downstream", rel("service", "checkout", "downstream", ""), []string{"cart", "payments", "pricing"}},
		{"downstream through relation", rel("service", "checkout", "downstream", `, "relation": "dependsOn"`), []string{"cart", "pricing"}},
		{"downstream through relation depth 2", rel("service", "checkout", "downstream", `, "relation": "dependsOn", "depth": 2`), []string{"cart", "db", "pricing"}},
		{"downstream depth 2", rel("service", "checkout", "downstream", `, "depth": 2`), []string{"cart", "db", "payments", "platform", "pricing"}},
		{"downstream of a team", rel("team", "payments", "downstream", ""), nil},
		{"downstream of a missing entity", rel("service", "ghost", "downstream", ""), nil},
		{"relatedTo and property", `{"combinator": "and", "rules": [` + rel("team", "payments", "upstream", "") + `, {"property": "language", "operator": "=", "value": "go"}]}`, []string{"checkout"}},
		{"relatedTo or property", `{"combinator": "or", "rules": [` + rel("team", "platform", "upstream", "") + `, {"property": "$identifier", "operator": "=", "value": "db"}]}`, []string{"db", "pricing", "search"}},
		{"two relatedTo", `{"combinator": "and", "rules": [` + rel("service", "pricing", "upstream", "") + `, ` + rel("service", "cart", "downstream", "") + `]}`, nil},
		{"relatedTo and not", `{"combinator": "and", "rules": [` + rel("service", "db", "upstream", `, "depth": 3`) + `, {"property": "tags", "operator": "notIn", "value": ["pci"]}]}`, []string{"cart", "pricing"}},
	}
	for _, tc := range global {
		t.Run(tc.name, func(t *testing.T) {
			page := e.search(`{"query": ` + tc.query + `, "limit": 1000}`)
			if got := sortedIDs(page.Entities); !equalStrings(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			if page.Total != len(tc.want) {
				t.Fatalf("total %d, want %d", page.Total, len(tc.want))
			}
		})
	}

	// Results carry their computed properties.
	page := e.search(`{"query": {"combinator": "and", "rules": [{"property": "$identifier", "operator": "=", "value": "cart"}]}}`)
	if len(page.Entities) != 1 || page.Entities[0].Properties["url"] != "https://svc/cart" || page.Entities[0].Properties["ownerSlack"] != "#pay" {
		t.Fatalf("search result: %+v", page.Entities)
	}

	// The clock decides expiry.
	e.clock.Advance(2 * 365 * 24 * time.Hour)
	page = e.search(`{"query": {"combinator": "and", "rules": [{"property": "expiresAt", "operator": "isExpired"}]}}`)
	if got := sortedIDs(page.Entities); !slices.Equal(got, []string{"cart", "checkout"}) {
		t.Fatalf("expired two years later: %v", got)
	}

	// Bad searches are validation errors.
	for _, q := range []string{
		`{"query": {"combinator": "and", "rules": [{"property": "tier", "operator": "like", "value": 1}]}}`,
		`{"query": {"combinator": "and", "rules": [{"property": "$nope", "operator": "=", "value": 1}]}}`,
		`{"query": {"combinator": "and", "rules": [{"operator": "relatedTo", "blueprint": "team", "identifier": "payments", "direction": "up"}]}}`,
		`{"query": {"combinator": "and", "rules": [{"operator": "relatedTo", "blueprint": "team", "identifier": "payments", "direction": "upstream", "depth": 4}]}}`,
		`{"query": {"combinator": "and", "rules": [{"property": "tier", "operator": "between", "value": [1]}]}}`,
		`{"limit": 1001}`,
		`{"cursor": "nope"}`,
		`{"sort": [{"property": "tier", "order": "up"}]}`,
	} {
		if _, err := e.searchErr(q); err == nil {
			t.Fatalf("%s: no error", q)
		} else {
			wantValidation(t, err)
		}
	}
}

func testSearchSort(t *testing.T, e *env) {
	seedCatalog(t, e)
	svc := `{"combinator": "and", "rules": [{"property": "$blueprint", "operator": "=", "value": "service"}]}`
	indexed := `{"combinator": "and", "rules": [{"property": "tier", "operator": ">=", "value": 1}]}`
	tests := []struct {
		name, query, sort string
		want              []string
	}{
		{"property asc then meta", svc, `[{"property": "tier"}, {"property": "$identifier"}]`, []string{"checkout", "search", "cart", "db", "pricing"}},
		{"property desc then meta desc", svc, `[{"property": "tier", "order": "desc"}, {"property": "$identifier", "order": "desc"}]`, []string{"pricing", "db", "cart", "search", "checkout"}},
		{"number desc", svc, `[{"property": "score", "order": "desc"}]`, []string{"checkout", "cart", "search", "pricing", "db"}},
		{"string asc", svc, `[{"property": "language"}, {"property": "score"}]`, []string{"pricing", "checkout", "search", "cart", "db"}},
		{"missing values last asc", svc, `[{"property": "expiresAt"}]`, []string{"checkout", "cart", "db", "pricing", "search"}},
		{"missing values last desc", svc, `[{"property": "expiresAt", "order": "desc"}]`, []string{"cart", "checkout", "db", "pricing", "search"}},
		{"$updatedAt desc", svc, `[{"property": "$updatedAt", "order": "desc"}]`, []string{"search", "checkout", "cart", "pricing", "db"}},
		{"$createdAt asc over everything", `null`, `[{"property": "$createdAt"}]`, []string{"payments", "platform", "db", "pricing", "cart", "checkout", "search"}},
		{"$createdAt desc, indexed query", indexed, `[{"property": "$createdAt", "order": "desc"}]`, []string{"search", "checkout", "cart", "pricing", "db"}},
		{"$identifier desc, indexed query", indexed, `[{"property": "$identifier", "order": "desc"}]`, []string{"search", "pricing", "db", "checkout", "cart"}},
		{"$identifier asc, no query", `null`, `[{"property": "$identifier"}]`, []string{"cart", "checkout", "db", "payments", "platform", "pricing", "search"}},
		{"$title asc", svc, `[{"property": "$title"}]`, []string{"db", "cart", "checkout", "pricing", "search"}},
		{"$datasource then $identifier desc", svc, `[{"property": "$datasource"}, {"property": "$identifier", "order": "desc"}]`, []string{"pricing", "db", "search", "checkout", "cart"}},
		{"calculation desc", svc, `[{"property": "url", "order": "desc"}]`, []string{"search", "pricing", "db", "checkout", "cart"}},
		{"mirror then identifier", svc, `[{"property": "ownerSlack"}, {"property": "$identifier"}]`, []string{"cart", "checkout", "pricing", "search", "db"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			page := e.search(`{"query": ` + tc.query + `, "sort": ` + tc.sort + `}`)
			if got := ids(page.Entities); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func testSearchPagination(t *testing.T, e *env) {
	e.blueprint(`{"identifier": "item", "schema": {"properties": {"n": {"type": "integer"}, "group": {"type": "string"}}}}`)
	e.blueprint(`{"identifier": "other", "schema": {"properties": {"n": {"type": "integer"}}}}`)
	const count = 57
	var items []catalog.WriteItem
	for i := 0; i < count; i++ {
		items = append(items, item(t, "item", fmt.Sprintf(`{"identifier": "item-%03d", "title": "Item %d", "properties": {"n": %d, "group": %q}}`, i, i, (i*37)%count, string(rune('a'+i%3)))))
		if i%2 == 0 {
			// same identifiers in another blueprint: refs, not identifiers, are unique
			items = append(items, item(t, "other", fmt.Sprintf(`{"identifier": "item-%03d", "properties": {"n": %d}}`, i, i)))
		}
	}
	if res, err := e.svc.Write(e.ctx, items); err != nil || res[0].Err != nil {
		t.Fatal(err)
	}
	type ref struct{ bp, id string }
	all := map[ref]*catalog.Entity{}
	for _, bp := range []string{"item", "other"} {
		page, _ := e.svc.ListEntities(e.ctx, bp, "", 1000)
		for _, x := range page.Entities {
			all[ref{bp, x.Identifier}] = x
		}
	}
	n := func(x *catalog.Entity) float64 { return x.Properties["n"].(float64) }
	tests := []struct {
		name, query, sort string
		limit             int
		match             func(x *catalog.Entity) bool
		less              func(a, b *catalog.Entity) bool // nil: only coverage is checked
	}{
		{"index-only, identifier order", `{"property": "$blueprint", "operator": "=", "value": "item"}`, `[{"property": "$identifier"}]`, 10,
			func(x *catalog.Entity) bool { return x.Blueprint == "item" },
			func(a, b *catalog.Entity) bool { return a.Identifier < b.Identifier }},
		{"index-only over two blueprints", `{"property": "n", "operator": ">=", "value": 10}`, `[]`, 9,
			func(x *catalog.Entity) bool { return n(x) >= 10 }, nil},
		{"index-only, $createdAt desc", `{"property": "n", "operator": "<", "value": 40}`, `[{"property": "$createdAt", "order": "desc"}]`, 8,
			func(x *catalog.Entity) bool { return n(x) < 40 }, nil},
		{"documents, property sort", `{"property": "group", "operator": "in", "value": ["a", "b"]}`, `[{"property": "n", "order": "desc"}]`, 7,
			func(x *catalog.Entity) bool { g := x.Properties["group"]; return g == "a" || g == "b" },
			func(a, b *catalog.Entity) bool { return n(a) > n(b) }},
		{"documents, unindexable rule", `{"property": "$title", "operator": "contains", "value": "tem 1"}`, `[]`, 4,
			func(x *catalog.Entity) bool { return strings.Contains(x.Title, "tem 1") }, nil},
		{"documents, everything by n", `{"property": "n", "operator": "!=", "value": -1}`, `[{"property": "n"}, {"property": "$blueprint"}]`, 25,
			func(x *catalog.Entity) bool { return true },
			func(a, b *catalog.Entity) bool {
				if n(a) != n(b) {
					return n(a) < n(b)
				}
				return a.Blueprint < b.Blueprint
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := map[ref]bool{}
			for r, x := range all {
				if tc.match(x) {
					want[r] = true
				}
			}
			if len(want) <= tc.limit {
				t.Fatalf("bad test: %d matches fit in one page of %d", len(want), tc.limit)
			}
			seen := map[ref]bool{}
			var order []*catalog.Entity
			cursor := "null"
			for pages := 0; ; pages++ {
				if pages > len(want) {
					t.Fatal("pagination does not end")
				}
				page := e.search(fmt.Sprintf(`{"query": {"combinator": "and", "rules": [%s]}, "sort": %s, "limit": %d, "cursor": %s}`, tc.query, tc.sort, tc.limit, cursor))
				if page.Total != len(want) {
					t.Fatalf("page %d: total %d, want %d", pages, page.Total, len(want))
				}
				if len(page.Entities) > tc.limit || (page.Next != "" && len(page.Entities) != tc.limit) {
					t.Fatalf("page %d has %d entities (limit %d, next %q)", pages, len(page.Entities), tc.limit, page.Next)
				}
				for _, x := range page.Entities {
					r := ref{x.Blueprint, x.Identifier}
					if seen[r] {
						t.Fatalf("%v returned twice", r)
					}
					if !want[r] {
						t.Fatalf("%v does not match", r)
					}
					seen[r] = true
					order = append(order, x)
				}
				if page.Next == "" {
					break
				}
				cursor = strconv.Quote(page.Next)
			}
			if len(seen) != len(want) {
				t.Fatalf("pages covered %d of %d matches", len(seen), len(want))
			}
			if tc.less != nil {
				for i := 1; i < len(order); i++ {
					if tc.less(order[i], order[i-1]) {
						t.Fatalf("out of order at %d: %s/%s after %s/%s", i, order[i].Blueprint, order[i].Identifier, order[i-1].Blueprint, order[i-1].Identifier)
					}
				}
			}
		})
	}
	// The only page has no next cursor; a cursor past the end is an empty page.
	if page := e.search(`{"query": null, "limit": 1000}`); page.Next != "" || page.Total != len(all) {
		t.Fatalf("single page: next %q total %d", page.Next, page.Total)
	}
	past := e.search(`{"query": null, "limit": 10, "cursor": "` + encodeOffset(5000) + `"}`)
	if len(past.Entities) != 0 || past.Next != "" || past.Total != len(all) {
		t.Fatalf("past the end: %d entities, next %q, total %d", len(past.Entities), past.Next, past.Total)
	}
}

func testRelated(t *testing.T, e *env) {
	seedCatalog(t, e)
	got, err := e.svc.Related(e.ctx, catalog.Ref{Blueprint: "service", Identifier: "pricing"}, "both", 2)
	if err != nil {
		t.Fatal(err)
	}
	hops := func(list []catalog.Hop) []string {
		var out []string
		for _, h := range list {
			out = append(out, fmt.Sprintf("%s/%s:%s:%d", h.Ref.Blueprint, h.Ref.Identifier, h.Relation, h.Depth))
		}
		sort.Strings(out)
		return out
	}
	if up := hops(got[catalog.Upstream]); !slices.Equal(up, []string{"service/cart:dependsOn:1", "service/checkout:dependsOn:1"}) {
		t.Fatalf("upstream %v", up)
	}
	if down := hops(got[catalog.Downstream]); !slices.Equal(down, []string{"service/db:dependsOn:1", "team/platform:owner:1"}) {
		t.Fatalf("downstream %v", down)
	}
	if _, err := e.svc.Related(e.ctx, catalog.Ref{Blueprint: "service", Identifier: "pricing"}, "both", 4); err == nil {
		t.Fatal("depth 4 accepted")
	}
	if _, err := e.svc.Related(e.ctx, catalog.Ref{Blueprint: "service", Identifier: "ghost"}, "both", 1); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("related of a missing entity: %v", err)
	}
}

// encodeOffset builds a cursor the way the service does (tests only: the
// cursor is opaque to clients).
func encodeOffset(n int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("o:" + strconv.Itoa(n)))
}

// ---------------------------------------------------------------------------
// Concurrency

// testConcurrency has 8 goroutines upsert and patch the same entities; at
// the end every index must agree with the stored documents, and every
// successful change must have exactly one event.
func testConcurrency(t *testing.T, e *env) {
	e.blueprint(`{"identifier": "node",
	  "schema": {"properties": {"color": {"type": "string"}, "size": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string"}}}},
	  "relations": {"next": {"target": "node"}}}`)
	const nodes, workers, ops = 10, 8, 30
	colors := []string{"red", "green", "blue", "yellow"}
	tags := []string{"x", "y", "z"}
	for i := 0; i < nodes; i++ {
		e.put("node", fmt.Sprintf(`{"identifier": "n%d", "properties": {"color": "red", "size": 0}}`, i))
	}
	startEvents := len(e.events())

	var changes atomic.Int64
	perNode := make([]atomic.Int64, nodes)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(seed int64) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(seed))
			ctx := as(fmt.Sprintf("worker-%d", seed), "")
			// relation targets are other nodes: relatedTo X never admits
			// X itself, so a self-loop would not be found by the check below
			other := func(self int) string { return fmt.Sprintf("n%d", (self+1+rng.Intn(nodes-1))%nodes) }
			for i := 0; i < ops; i++ {
				target := rng.Intn(nodes)
				id := fmt.Sprintf("n%d", target)
				var it catalog.WriteItem
				switch rng.Intn(3) {
				case 0:
					var ts []any
					for _, tg := range tags {
						if rng.Intn(2) == 0 {
							ts = append(ts, tg)
						}
					}
					p := map[string]any{"color": colors[rng.Intn(len(colors))], "size": float64(rng.Intn(5))}
					if ts != nil {
						p["tags"] = ts
					}
					r := map[string]any{}
					if rng.Intn(2) == 0 {
						r["next"] = other(target)
					}
					it = catalog.WriteItem{Mode: catalog.Upsert, Entity: &catalog.Entity{Blueprint: "node", Identifier: id, Properties: p, Relations: r}}
				case 1:
					patch := map[string]any{"properties": map[string]any{"color": colors[rng.Intn(len(colors))]}}
					if rng.Intn(2) == 0 {
						patch = map[string]any{"properties": map[string]any{"size": float64(rng.Intn(5)), "tags": nil}}
					}
					it = catalog.WriteItem{Mode: catalog.Patch, Entity: &catalog.Entity{Blueprint: "node", Identifier: id}, Patch: patch}
				default:
					var next any
					if rng.Intn(3) > 0 {
						next = other(target)
					}
					it = catalog.WriteItem{Mode: catalog.Patch, Entity: &catalog.Entity{Blueprint: "node", Identifier: id},
						Patch: map[string]any{"relations": map[string]any{"next": next}, "properties": map[string]any{"tags": []any{tags[rng.Intn(3)]}}}}
				}
				res, err := e.svc.Write(ctx, []catalog.WriteItem{it})
				if err == nil && res[0].Err != nil {
					err = res[0].Err
				}
				if err != nil {
					errs <- fmt.Errorf("worker %d op %d: %w", seed, i, err)
					return
				}
				if res[0].Status != catalog.StatusUnchanged {
					changes.Add(1)
					perNode[target].Add(1)
				}
			}
		}(int64(w))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	page, err := e.svc.ListEntities(e.ctx, "node", "", 100)
	if err != nil || len(page.Entities) != nodes {
		t.Fatalf("list: %v %v", page, err)
	}
	stored := page.Entities
	// every index agrees with the documents: a search by each value returns
	// exactly the entities holding it, and its total counts no stale member
	check := func(rule string, holds func(x *catalog.Entity) bool) {
		t.Helper()
		var want []string
		for _, x := range stored {
			if holds(x) {
				want = append(want, x.Identifier)
			}
		}
		sort.Strings(want)
		page := e.search(`{"query": {"combinator": "and", "rules": [` + rule + `]}, "limit": 1000}`)
		if got := sortedIDs(page.Entities); !equalStrings(got, want) || page.Total != len(want) {
			t.Fatalf("%s: got %v (total %d), documents say %v", rule, got, page.Total, want)
		}
	}
	for _, c := range colors {
		check(`{"property": "color", "operator": "=", "value": "`+c+`"}`, func(x *catalog.Entity) bool { return x.Properties["color"] == c })
	}
	for s := 0; s < 5; s++ {
		check(fmt.Sprintf(`{"property": "size", "operator": "=", "value": %d}`, s), func(x *catalog.Entity) bool { return x.Properties["size"] == float64(s) })
		check(fmt.Sprintf(`{"property": "size", "operator": ">=", "value": %d}`, s), func(x *catalog.Entity) bool { return x.Properties["size"].(float64) >= float64(s) })
	}
	for _, tg := range tags {
		check(`{"property": "tags", "operator": "=", "value": "`+tg+`"}`, func(x *catalog.Entity) bool {
			list, _ := x.Properties["tags"].([]any)
			return slices.Contains(list, any(tg))
		})
	}
	check(`{"property": "tags", "operator": "isEmpty"}`, func(x *catalog.Entity) bool { return x.Properties["tags"] == nil })
	for i := 0; i < nodes; i++ {
		id := fmt.Sprintf("n%d", i)
		check(`{"operator": "relatedTo", "blueprint": "node", "identifier": "`+id+`", "direction": "upstream"}`,
			func(x *catalog.Entity) bool { return x.Relations["next"] == id })
		check(`{"operator": "relatedTo", "blueprint": "node", "identifier": "`+id+`", "direction": "downstream"}`,
			func(x *catalog.Entity) bool {
				for _, y := range stored {
					if y.Identifier == id {
						return y.Relations["next"] == x.Identifier
					}
				}
				return false
			})
	}
	check(`{"property": "$updatedAt", "operator": ">=", "value": "`+t0.Format(time.RFC3339)+`"}`, func(*catalog.Entity) bool { return true })

	// one event per change, and each entity's history has its own
	if n := len(e.events()) - startEvents; int64(n) != changes.Load() {
		t.Fatalf("%d events for %d changes", n, changes.Load())
	}
	for i := 0; i < nodes; i++ {
		hist, err := e.svc.History(e.ctx, catalog.Ref{Blueprint: "node", Identifier: fmt.Sprintf("n%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(hist)) != 1+perNode[i].Load() {
			t.Fatalf("n%d: %d history entries for %d changes", i, len(hist), 1+perNode[i].Load())
		}
		// the last history entry is the stored document
		last := hist[len(hist)-1]
		var after catalog.Entity
		_ = json.Unmarshal(last.After, &after)
		cur := e.get("node", fmt.Sprintf("n%d", i))
		if !reflect.DeepEqual(after.Properties, cur.Properties) {
			t.Fatalf("n%d: last event %v, stored %v", i, after.Properties, cur.Properties)
		}
	}
}

// ---------------------------------------------------------------------------
// Index-answered searches fetch only the page

// mgetCounter counts entity documents fetched with MGET (in pipelines too).
type mgetCounter struct {
	prefix string
	on     atomic.Bool
	keys   atomic.Int64
	scans  atomic.Int64 // full reads of a blueprint's identifier set
}

func (h *mgetCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *mgetCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.count(cmd)
		return next(ctx, cmd)
	}
}

func (h *mgetCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			h.count(cmd)
		}
		return next(ctx, cmds)
	}
}

func (h *mgetCounter) count(cmd redis.Cmder) {
	if !h.on.Load() {
		return
	}
	args := cmd.Args()
	switch strings.ToLower(cmd.Name()) {
	case "mget":
		for _, a := range args[1:] {
			if s, ok := a.(string); ok && strings.HasPrefix(s, h.prefix+"|e|") {
				h.keys.Add(1)
			}
		}
	case "zrange", "smembers":
		if len(args) > 1 {
			if s, ok := args[1].(string); ok && strings.HasPrefix(s, h.prefix+"|ids|") {
				h.scans.Add(1)
			}
		}
	}
}

func testIndexedSearchDoesNotScan(t *testing.T, e *env) {
	hook := &mgetCounter{prefix: e.prefix}
	e.rdb.AddHook(hook)
	e.blueprint(`{"identifier": "team"}`)
	e.blueprint(`{"identifier": "svc",
	  "schema": {"properties": {"lang": {"type": "string"}, "tier": {"type": "integer"}, "note": {"type": "string"}}},
	  "relations": {"owner": {"target": "team"}}}`)
	e.blueprint(`{"identifier": "host", "schema": {"properties": {"zone": {"type": "string"}}}}`)
	langs := []string{"go", "python", "rust", "java", "js"}
	var items []catalog.WriteItem
	for i := 0; i < 10; i++ {
		items = append(items, item(t, "team", fmt.Sprintf(`{"identifier": "t%d"}`, i)))
	}
	for i := 0; i < 500; i++ {
		items = append(items, item(t, "host", fmt.Sprintf(`{"identifier": "h%d", "properties": {"zone": "z%d"}}`, i, i%3)))
	}
	const n = 2000
	for i := 0; i < n; i++ {
		items = append(items, item(t, "svc", fmt.Sprintf(`{"identifier": "s%04d", "properties": {"lang": %q, "tier": %d, "note": %q}, "relations": {"owner": "t%d"}}`,
			i, langs[i%5], (i/5)%4+1, strings.Repeat("x", 200), (i/20)%10)))
	}
	res, err := e.svc.Write(e.ctx, items)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("item %d: %v", r.Index, r.Err)
		}
	}

	// maxFetched bounds the entity documents a search may read
	pageOnly := func(results int) int { return results + 5 }
	notAScan := func(int) int { return n / 2 } // ranges may check a narrowed candidate set on the documents
	tests := []struct {
		name, query string
		limit       int
		want        func(i int) bool
		maxFetched  func(results int) int
	}{
		{"two equality rules and relatedTo", `[{"property": "lang", "operator": "=", "value": "go"}, {"property": "tier", "operator": "=", "value": 2},
		   {"operator": "relatedTo", "blueprint": "team", "identifier": "t3", "direction": "upstream"}]`, 100,
			func(i int) bool { return i%5 == 0 && (i/5)%4 == 1 && (i/20)%10 == 3 }, pageOnly},
		{"one page of them", `[{"property": "lang", "operator": "=", "value": "go"}, {"property": "tier", "operator": "=", "value": 2},
		   {"operator": "relatedTo", "blueprint": "team", "identifier": "t3", "direction": "upstream"}]`, 3,
			func(i int) bool { return i%5 == 0 && (i/5)%4 == 1 && (i/20)%10 == 3 }, pageOnly},
		{"two equality rules, other blueprints lack the properties", `[{"property": "lang", "operator": "=", "value": "rust"}, {"property": "tier", "operator": "=", "value": 4}]`, 1000,
			func(i int) bool { return i%5 == 2 && (i/5)%4 == 3 }, pageOnly},
		{"one-value in and a meta equality", `[{"property": "lang", "operator": "in", "value": ["rust"]}, {"property": "$datasource", "operator": "=", "value": "user:alice"},
		   {"property": "$blueprint", "operator": "=", "value": "svc"}]`, 1000,
			func(i int) bool { return i%5 == 2 }, pageOnly},
		{"in and range", `[{"property": "lang", "operator": "in", "value": ["go", "js"]}, {"property": "tier", "operator": "between", "value": [2, 3]}, {"property": "$identifier", "operator": "<", "value": "s1000"}]`, 1000,
			func(i int) bool { return (i%5 == 0 || i%5 == 4) && (i/5)%4 >= 1 && (i/5)%4 <= 2 && i < 1000 }, notAScan},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var want []string
			for i := 0; i < n; i++ {
				if tc.want(i) {
					want = append(want, fmt.Sprintf("s%04d", i))
				}
			}
			hook.keys.Store(0)
			hook.scans.Store(0)
			hook.on.Store(true)
			page := e.search(fmt.Sprintf(`{"query": {"combinator": "and", "rules": %s}, "limit": %d}`, tc.query, tc.limit))
			hook.on.Store(false)
			if page.Total != len(want) {
				t.Fatalf("total %d, want %d", page.Total, len(want))
			}
			if len(want) > tc.limit {
				want = want[:tc.limit]
			}
			if got := ids(page.Entities); !slices.Equal(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
			if fetched := hook.keys.Load(); fetched > int64(tc.maxFetched(len(page.Entities))) {
				t.Fatalf("fetched %d entity documents for %d results: the search scanned", fetched, len(page.Entities))
			}
			if scans := hook.scans.Load(); scans != 0 {
				t.Fatalf("read a whole identifier set %d times", scans)
			}
		})
	}
}

// testDeleteRacesWrites deletes entities while other writes point relations
// at them: whoever commits first, no relation ever dangles.
func testDeleteRacesWrites(t *testing.T, e *env) {
	e.blueprint(`{"identifier": "team"}`)
	e.blueprint(`{"identifier": "svc", "relations": {"owner": {"target": "team", "required": true}, "backup": {"target": "team"}}}`)
	const rounds = 40
	var wg sync.WaitGroup
	for i := 0; i < rounds; i++ {
		team := fmt.Sprintf("t%d", i)
		e.put("team", `{"identifier": "`+team+`"}`)
		wg.Add(3)
		go func() {
			defer wg.Done()
			_, err := e.svc.DeleteEntity(e.ctx, catalog.Ref{Blueprint: "team", Identifier: team}, i%2 == 0)
			if err != nil && !errors.Is(err, catalog.ErrInUse) {
				t.Errorf("delete %s: %v", team, err)
			}
		}()
		for _, rel := range []string{"owner", "backup"} {
			go func() {
				defer wg.Done()
				js := fmt.Sprintf(`{"identifier": "s-%s-%s", "relations": {"owner": "keep", %q: %q}}`, team, rel, rel, team)
				if rel == "owner" {
					js = fmt.Sprintf(`{"identifier": "s-%s-%s", "relations": {"owner": %q}}`, team, rel, team)
				}
				_, _, err := e.svc.PutEntity(e.ctx, decodeEntity(t, "svc", js), false)
				var verr *catalog.ValidationError
				if err != nil && !errors.As(err, &verr) {
					t.Errorf("write %s: %v", js, err)
				}
			}()
		}
		if i == 0 {
			e.put("team", `{"identifier": "keep"}`)
		}
		wg.Wait()
	}
	// every relation of every service points at an existing team, and the
	// reverse index agrees
	page, err := e.svc.ListEntities(e.ctx, "svc", "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	referrers := map[string][]string{}
	for _, s := range page.Entities {
		for _, rel := range s.RelationNames() {
			for _, team := range s.RelationTargets(rel) {
				if _, err := e.svc.GetEntity(e.ctx, catalog.Ref{Blueprint: "team", Identifier: team}); err != nil {
					t.Fatalf("%s.%s points at team %s: %v", s.Identifier, rel, team, err)
				}
				referrers[team] = append(referrers[team], s.Identifier)
			}
		}
	}
	teams, _ := e.svc.ListEntities(e.ctx, "team", "", 1000)
	for _, tm := range teams.Entities {
		want := referrers[tm.Identifier]
		sort.Strings(want)
		want = slices.Compact(want)
		got := e.search(`{"query": {"combinator": "and", "rules": [{"operator": "relatedTo", "blueprint": "team", "identifier": "` + tm.Identifier + `", "direction": "upstream"}]}, "limit": 1000}`)
		if ids := sortedIDs(got.Entities); !equalStrings(ids, want) {
			t.Fatalf("upstream of %s: index says %v, documents say %v", tm.Identifier, ids, want)
		}
	}
}

// testBlueprintChangeRacesWrites tightens and loosens a blueprint while
// entities are written: a tightening either sees every entity it would
// invalidate or the writes that come after it see the tighter schema, so
// the stored entities always satisfy the stored blueprint.
func testBlueprintChangeRacesWrites(t *testing.T, e *env) {
	loose := `{"identifier": "svc", "schema": {"properties": {"tier": {"type": "integer"}}}}`
	tight := `{"identifier": "svc", "schema": {"properties": {"tier": {"type": "integer", "maximum": 3}}}}`
	e.blueprint(loose)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var tightened atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 30; i++ {
			if _, _, err := e.svc.PutBlueprint(e.ctx, decodeBlueprint(t, tight), false); err == nil {
				tightened.Add(1)
			} else if !errors.As(err, new(*catalog.ValidationError)) {
				t.Errorf("tighten: %v", err)
			}
			if _, _, err := e.svc.PutBlueprint(e.ctx, decodeBlueprint(t, loose), false); err != nil {
				t.Errorf("loosen: %v", err)
			}
		}
		if _, _, err := e.svc.PutBlueprint(e.ctx, decodeBlueprint(t, tight), false); err == nil {
			tightened.Add(1)
		}
		close(stop)
	}()
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				tier := 1 + (w+i)%3
				if i%8 == 0 {
					tier = 4 // too high for the tight schema
				}
				js := fmt.Sprintf(`{"identifier": "s%d", "properties": {"tier": %d}}`, (w*7+i)%6, tier)
				_, _, err := e.svc.PutEntity(e.ctx, decodeEntity(t, "svc", js), false)
				if err != nil && !errors.As(err, new(*catalog.ValidationError)) {
					t.Errorf("write: %v", err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	bp, err := e.svc.GetBlueprint(e.ctx, "svc")
	if err != nil {
		t.Fatal(err)
	}
	compiled, err := catalog.CompileBlueprint(bp)
	if err != nil {
		t.Fatal(err)
	}
	page, err := e.svc.ListEntities(e.ctx, "svc", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range page.Entities {
		x.Properties = map[string]any{"tier": x.Properties["tier"]}
		if err := compiled.ValidateEntity(x); err != nil {
			t.Fatalf("stored %s violates the stored blueprint: %v", x.Identifier, err)
		}
	}
	t.Logf("tightened %d times, %d entities", tightened.Load(), len(page.Entities))
}
