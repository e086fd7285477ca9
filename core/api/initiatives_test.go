package api_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/access"
	"github.com/portico-dev/portico/core/access/redisaccess"
	"github.com/portico-dev/portico/core/api"
	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/core/catalog/rediscatalog"
	"github.com/portico-dev/portico/core/initiatives"
	"github.com/portico-dev/portico/core/initiatives/redisinitiatives"
)

// initEnv is a portal with access and initiatives, whose recorder (Run)
// the test starts and stops, on a clock it sets.
type initEnv struct {
	*accessEnv
	cat   *catalog.Service
	store *redisinitiatives.Store
	clock *clock
	stops []func()
}

func newInitEnv(t *testing.T) *initEnv {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	cat := catalog.NewService(rediscatalog.New(rdb, rediscatalog.Options{}), catalog.Options{Authorizer: access.Authorizer{}})
	acc := access.NewService(cat, redisaccess.New(rdb, redisaccess.Options{}), access.Options{AdminToken: token})
	if err := acc.Bootstrap(context.Background()); err != nil {
		t.Fatal(err)
	}
	e := &initEnv{cat: cat, store: redisinitiatives.New(rdb, redisinitiatives.Options{}),
		clock: &clock{t: time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)}}
	srv := httptest.NewServer(api.New(api.Config{Catalog: cat, Access: acc, Initiatives: e.service()}))
	t.Cleanup(srv.Close)
	e.accessEnv = &accessEnv{env: &env{t: t, srv: srv}, rdb: rdb}
	t.Cleanup(e.stop)
	return e
}

// service is a fresh initiatives service over the env's store, as another
// process would have.
func (e *initEnv) service() *initiatives.Service {
	return initiatives.NewService(e.store, e.cat, initiatives.Options{Now: e.clock.Now, Throttle: time.Millisecond})
}

// run starts a recorder (one more process running it).
func (e *initEnv) run() {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		e.service().Run(ctx, slog.New(slog.DiscardHandler))
	}()
	e.stops = append(e.stops, func() { cancel(); wg.Wait() })
}

// stop stops every recorder and waits for them to end.
func (e *initEnv) stop() {
	for _, s := range e.stops {
		s()
	}
	e.stops = nil
}

// eventually polls GET path until ok accepts its body (generous deadline).
func (e *initEnv) eventually(path string, ok func(M) bool) M {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last resp
	for time.Now().Before(deadline) {
		last = e.do("GET", path, nil)
		if last.Status == http.StatusOK && ok(last.obj(e.t)) {
			return last.obj(e.t)
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("GET %s never satisfied the condition; last: %d %.1000s", path, last.Status, last.Raw)
	return nil
}

// settle runs the derived-values worker until nothing is marked.
func (e *initEnv) settle() {
	e.t.Helper()
	ctx := catalog.WithActor(context.Background(), catalog.SystemActor(catalog.DeriveActor))
	for range 100 {
		n, err := e.cat.RunDeriveOnce(ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	e.t.Fatal("derived values never settled")
}

// gradedCatalog defines service (read: owned entities only, for members)
// with scorecard readiness, teams payments and platform, and services:
// gold (payments) Gold, bronze (platform) Bronze, basic (payments and
// platform) Basic, and unscoped (payments), which has no tier and is
// left out by the scorecard's filter.
func (e *initEnv) gradedCatalog() {
	e.must(201, "PUT", "/api/v1/blueprints/_team/entities/payments", M{})
	e.must(201, "PUT", "/api/v1/blueprints/_team/entities/platform", M{})
	e.must(201, "PUT", "/api/v1/blueprints/service", M{
		"schema":      M{"properties": M{"tier": M{"type": "integer"}, "language": M{"type": "string"}, "docs": M{"type": "boolean"}}},
		"permissions": M{"read": M{"ownedOnly": true}},
	})
	rule := func(prop, op string, v any) M {
		r := M{"property": prop, "operator": op}
		if v != nil {
			r["value"] = v
		}
		return M{"combinator": "and", "rules": []M{r}}
	}
	e.must(201, "PUT", "/api/v1/blueprints/service/scorecards/readiness", M{
		"title":  "Readiness",
		"filter": rule("tier", "isNotEmpty", nil),
		"rules": []M{
			{"identifier": "language", "title": "Has a language", "level": "Bronze", "query": rule("language", "isNotEmpty", nil)},
			{"identifier": "tier", "level": "Silver", "query": rule("tier", "<=", 2)},
			{"identifier": "docs", "title": "Documented", "level": "Gold", "query": rule("docs", "=", true)},
		},
	})
	e.settle()
	for id, ent := range map[string]M{
		"gold":     {"team": []string{"payments"}, "properties": M{"tier": 1, "language": "go", "docs": true}},
		"bronze":   {"team": []string{"platform"}, "properties": M{"tier": 3, "language": "go"}},
		"basic":    {"team": []string{"payments", "platform"}, "properties": M{"tier": 3}},
		"unscoped": {"team": []string{"payments"}, "properties": M{"language": "go"}},
	} {
		e.must(201, "PUT", "/api/v1/blueprints/service/entities/"+id, ent)
	}
}

func asJSON(t *testing.T, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// TestScorecardLevelHistory: an entity's levels over time are its
// creation level and each change, from its history; reading it needs
// reading the entity.
func TestScorecardLevelHistory(t *testing.T) {
	e := newInitEnv(t)
	e.gradedCatalog()
	e.must(200, "PUT", "/api/v1/blueprints/service/entities/gold", M{"team": []string{"payments"}, "properties": M{"tier": 3, "language": "go", "docs": true}})
	e.must(200, "PUT", "/api/v1/blueprints/service/entities/gold", M{"team": []string{"payments"}, "properties": M{"tier": 1, "language": "go", "docs": true}})

	got := e.must(200, "GET", "/api/v1/blueprints/service/entities/gold/scorecards/readiness/history", nil).obj(t)
	var levels []M
	for _, l := range got["levels"].([]any) {
		m := l.(M)
		if _, err := time.Parse(time.RFC3339Nano, m["at"].(string)); err != nil {
			t.Errorf("at %v: %v", m["at"], err)
		}
		delete(m, "at")
		levels = append(levels, m)
	}
	want := []M{
		{"level": "Gold", "from": ""},
		{"level": "Bronze", "from": "Gold", "direction": "degraded"},
		{"level": "Gold", "from": "Bronze", "direction": "improved"},
	}
	if asJSON(t, levels) != asJSON(t, want) {
		t.Errorf("levels %s, want %s", asJSON(t, levels), asJSON(t, want))
	}

	e.must(404, "GET", "/api/v1/blueprints/service/entities/gold/scorecards/nope/history", nil)
	e.must(404, "GET", "/api/v1/blueprints/service/entities/nope/scorecards/readiness/history", nil)
	e.user("bob@example.com", catalog.RoleMember, "platform")
	_, bob := e.mint("bob@example.com", "read")
	if r := e.as(bob, "GET", "/api/v1/blueprints/service/entities/gold/scorecards/readiness/history", nil); r.Status != 404 {
		t.Errorf("a member who may not read gold: %d %.300s, want 404", r.Status, r.Raw)
	}
	if r := e.as(bob, "GET", "/api/v1/blueprints/service/entities/bronze/scorecards/readiness/history", nil); r.Status != 200 {
		t.Errorf("a member reading bronze: %d %.300s, want 200", r.Status, r.Raw)
	}
}

// TestScorecardDistributionHistory: two recorders following the change
// stream record each day's distribution; a day without a snapshot
// carries the day before; the history needs reading every entity.
func TestScorecardDistributionHistory(t *testing.T) {
	e := newInitEnv(t)
	e.run()
	e.run() // a second process: harmless
	e.gradedCatalog()
	const path = "/api/v1/blueprints/service/scorecards/readiness/history?days=5"
	day1 := M{"date": "2026-12-05", "levels": M{"Basic": 1, "Bronze": 1, "Silver": 0, "Gold": 1}, "ungraded": 1}
	e.eventually(path, func(m M) bool { return asJSON(t, m["days"]) == asJSON(t, []M{day1}) })

	e.clock.Add(48 * time.Hour)
	e.must(200, "PUT", "/api/v1/blueprints/service/entities/gold", M{"team": []string{"payments"}, "properties": M{"tier": 1, "language": "go"}})
	day2 := M{"date": "2026-12-06", "levels": day1["levels"], "ungraded": 1}
	day3 := M{"date": "2026-12-07", "levels": M{"Basic": 1, "Bronze": 1, "Silver": 1, "Gold": 0}, "ungraded": 1}
	e.eventually(path, func(m M) bool { return asJSON(t, m["days"]) == asJSON(t, []M{day1, day2, day3}) })

	got := e.must(200, "GET", "/api/v1/blueprints/service/scorecards/readiness/history?days=2", nil).obj(t)
	if want := []M{day2, day3}; asJSON(t, got["days"]) != asJSON(t, want) {
		t.Errorf("2 days: %s, want %s", asJSON(t, got["days"]), asJSON(t, want))
	}
	for _, bad := range []string{"days=0", "days=367", "days=x"} {
		if r := e.do("GET", "/api/v1/blueprints/service/scorecards/readiness/history?"+bad, nil); r.Status/100 != 4 || r.Status == 404 {
			t.Errorf("%s: %d, want a 400 or 422", bad, r.Status)
		}
	}
	e.must(404, "GET", "/api/v1/blueprints/service/scorecards/nope/history", nil)

	e.user("bob@example.com", catalog.RoleMember, "platform")
	_, bob := e.mint("bob@example.com", "read")
	forbidden(t, e.as(bob, "GET", path, nil), "read every service entity")
}

const initiativePath = "/api/v1/initiatives/silver-by-q1"

var silverInitiative = M{
	"title": "Every tiered service Silver", "blueprint": "service",
	"target":  M{"scorecard": "readiness", "level": "Silver"},
	"filter":  M{"combinator": "and", "rules": []M{{"property": "tier", "operator": "isNotEmpty"}}},
	"dueDate": "2027-03-31", "owner": "platform",
}

// progress decodes an initiative's progress.
func progressOf(t *testing.T, m M) initiatives.Progress {
	t.Helper()
	var p initiatives.Progress
	raw, _ := json.Marshal(m["progress"])
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestInitiativeProgress: progress overall and by team (an entity counts
// for each of its teams), the share day by day, and the entities that
// fell below the target, recorded from the change stream.
func TestInitiativeProgress(t *testing.T) {
	e := newInitEnv(t)
	e.gradedCatalog()
	e.run()
	created := e.must(201, "PUT", initiativePath, silverInitiative).obj(t)
	p := progressOf(t, created)
	// In scope: gold, bronze, basic (unscoped has no tier); at Silver or
	// above: gold.
	if p.InScope != 3 || p.Meeting != 1 || p.Share != 0.3333 {
		t.Errorf("progress %+v, want 1 of 3", p)
	}
	wantTeams := []initiatives.TeamProgress{
		{Team: "payments", InScope: 2, Meeting: 1, Share: 0.5},
		{Team: "platform", InScope: 2, Meeting: 0, Share: 0},
	}
	if asJSON(t, p.ByTeam) != asJSON(t, wantTeams) {
		t.Errorf("by team %s, want %s", asJSON(t, p.ByTeam), asJSON(t, wantTeams))
	}
	if len(p.History) != 1 || p.History[0].Date != "2026-12-05" || p.History[0].Share != 0.3333 {
		t.Errorf("history %+v, want today's share", p.History)
	}
	if p.Regressed == nil || len(p.Regressed) != 0 {
		t.Errorf("regressed %+v, want an empty list", p.Regressed)
	}

	// gold falls to Bronze (tier 3), bronze rises to Gold: a regression,
	// and a share of 1/3 again (the next day).
	e.clock.Add(24 * time.Hour)
	e.must(200, "PUT", "/api/v1/blueprints/service/entities/gold", M{"team": []string{"payments"}, "properties": M{"tier": 3, "language": "go", "docs": true}})
	e.must(200, "PUT", "/api/v1/blueprints/service/entities/bronze", M{"team": []string{"platform"}, "properties": M{"tier": 1, "language": "go", "docs": true}})
	got := e.eventually(initiativePath, func(m M) bool {
		p := progressOf(t, m)
		return len(p.Regressed) == 1 && len(p.History) == 2 && p.History[1].Meeting == 1
	})
	p = progressOf(t, got)
	if r := p.Regressed[0]; r.Blueprint != "service" || r.Identifier != "gold" || r.From != "Gold" || r.To != "Bronze" || r.At.IsZero() {
		t.Errorf("regressed %+v, want gold from Gold to Bronze", r)
	}
	if h := p.History[1]; h.Date != "2026-12-06" || h.Share != 0.3333 || h.InScope != 3 || h.Meeting != 1 {
		t.Errorf("history of the second day %+v, want 1 of 3", h)
	}
	wantTeams = []initiatives.TeamProgress{
		{Team: "payments", InScope: 2, Meeting: 0, Share: 0},
		{Team: "platform", InScope: 2, Meeting: 1, Share: 0.5},
	}
	if asJSON(t, p.ByTeam) != asJSON(t, wantTeams) {
		t.Errorf("by team after the changes %s, want %s", asJSON(t, p.ByTeam), asJSON(t, wantTeams))
	}

	list := e.must(200, "GET", "/api/v1/initiatives", nil).obj(t)
	if items := list["initiatives"].([]any); len(items) != 1 || items[0].(M)["identifier"] != "silver-by-q1" {
		t.Errorf("list %.500s", asJSON(t, list))
	}
	// What GET returns is accepted back.
	e.must(200, "PUT", initiativePath, got)
	e.must(204, "DELETE", initiativePath, nil)
	e.must(404, "GET", initiativePath, nil)
	e.must(404, "DELETE", initiativePath, nil)
}

// TestInitiativeRecorderResumes: a regression made while no recorder runs
// is recorded by the next one, which resumes from the saved position.
func TestInitiativeRecorderResumes(t *testing.T) {
	e := newInitEnv(t)
	e.gradedCatalog()
	e.run()
	e.must(201, "PUT", initiativePath, silverInitiative)
	// Wait for the recorder to have saved a position past the initiative.
	e.must(201, "PUT", "/api/v1/blueprints/service/entities/marker", M{"properties": M{"tier": 1}})
	_, newest, err := e.cat.EventBounds(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		pos, err := e.store.Position(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if pos != "" && !catalog.EventIDBefore(pos, newest) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("position %q never reached %q", pos, newest)
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.stop()

	e.must(200, "PUT", "/api/v1/blueprints/service/entities/gold", M{"team": []string{"payments"}, "properties": M{"tier": 3, "language": "go"}})
	if p := progressOf(t, e.must(200, "GET", initiativePath, nil).obj(t)); len(p.Regressed) != 0 {
		t.Fatalf("regressed %+v with no recorder running", p.Regressed)
	}
	e.run()
	got := e.eventually(initiativePath, func(m M) bool { return len(progressOf(t, m).Regressed) == 1 })
	if r := progressOf(t, got).Regressed[0]; r.Identifier != "gold" || r.From != "Gold" || r.To != "Bronze" {
		t.Errorf("regressed %+v, want gold from Gold to Bronze", r)
	}
}

// TestInitiativePermissions: admins define initiatives, members read
// them; a member's progress counts only the entities they may read, and
// the share over time (which counts all) is not shown to them.
func TestInitiativePermissions(t *testing.T) {
	e := newInitEnv(t)
	e.gradedCatalog()
	e.must(201, "PUT", initiativePath, silverInitiative)
	e.user("pat@example.com", catalog.RoleMember, "payments")
	_, pat := e.mint("pat@example.com", "read", "write")

	forbidden(t, e.as(pat, "PUT", initiativePath, silverInitiative), "define initiatives")
	forbidden(t, e.as(pat, "DELETE", initiativePath, nil), "define initiatives")

	r := e.as(pat, "GET", initiativePath, nil)
	if r.Status != 200 {
		t.Fatalf("member GET: %d %.300s", r.Status, r.Raw)
	}
	p := progressOf(t, r.obj(t))
	// pat reads payments' services: gold (Gold) and basic in scope.
	if p.InScope != 2 || p.Meeting != 1 || p.Share != 0.5 {
		t.Errorf("member progress %+v, want 1 of 2", p)
	}
	wantTeams := []initiatives.TeamProgress{
		{Team: "payments", InScope: 2, Meeting: 1, Share: 0.5},
		{Team: "platform", InScope: 1, Meeting: 0, Share: 0},
	}
	if asJSON(t, p.ByTeam) != asJSON(t, wantTeams) {
		t.Errorf("member by team %s, want %s", asJSON(t, p.ByTeam), asJSON(t, wantTeams))
	}
	if len(p.History) != 0 {
		t.Errorf("member sees the history %+v counting entities hidden from them", p.History)
	}
	list := e.as(pat, "GET", "/api/v1/initiatives", nil)
	if list.Status != 200 || progressOf(t, list.obj(t)["initiatives"].([]any)[0].(M)).InScope != 2 {
		t.Errorf("member list: %d %.500s", list.Status, list.Raw)
	}
	if p := progressOf(t, e.must(200, "GET", initiativePath, nil).obj(t)); p.InScope != 3 || len(p.History) != 1 {
		t.Errorf("admin progress %+v, want 3 in scope and the history", p)
	}
}

// TestInitiativeValidation: a definition the catalog cannot back is
// refused with the path of each problem.
func TestInitiativeValidation(t *testing.T) {
	e := newInitEnv(t)
	e.gradedCatalog()
	with := func(changes M) M {
		out := M{}
		for k, v := range silverInitiative {
			out[k] = v
		}
		for k, v := range changes {
			if v == nil {
				delete(out, k)
				continue
			}
			out[k] = v
		}
		return out
	}
	for name, c := range map[string]struct {
		body   M
		status int
		path   string
	}{
		"unknown blueprint": {with(M{"blueprint": "nope"}), 422, "/blueprint"},
		"unknown scorecard": {with(M{"target": M{"scorecard": "nope", "level": "Silver"}}), 422, "/target/scorecard"},
		"unknown level":     {with(M{"target": M{"scorecard": "readiness", "level": "Platinum"}}), 422, "/target/level"},
		"bad date":          {with(M{"dueDate": "31/03/2027"}), 422, "/dueDate"},
		"no date":           {with(M{"dueDate": nil}), 422, "/dueDate"},
		"no owner":          {with(M{"owner": nil}), 422, "/owner"},
		"both targets":      {with(M{"target": M{"scorecard": "readiness", "level": "Silver", "rules": M{"combinator": "and", "rules": []M{}}}}), 422, "/target"},
		"bad filter":        {with(M{"filter": M{"combinator": "xor", "rules": []M{}}}), 422, "/filter/combinator"},
		"unknown field":     {with(M{"deadline": "2027-03-31"}), 400, ""},
		"identifier":        {with(M{"identifier": "other"}), 422, "/identifier"},
	} {
		t.Run(name, func(t *testing.T) {
			r := e.do("PUT", initiativePath, c.body)
			if c.status == 400 {
				checkError(t, r, 400, "malformed_request", nil)
				return
			}
			checkError(t, r, c.status, "validation_failed", []string{c.path})
		})
	}
	// A rules target is accepted and counted.
	rules := with(M{"target": M{"rules": M{"combinator": "and", "rules": []M{{"property": "language", "operator": "=", "value": "go"}}}}})
	p := progressOf(t, e.must(201, "PUT", initiativePath, rules).obj(t))
	if p.InScope != 3 || p.Meeting != 2 {
		t.Errorf("rules target progress %+v, want 2 of 3", p)
	}
}
