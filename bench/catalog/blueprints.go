package main

// The blueprint-change scenario (issue 16): -entities services in a real
// Redis behind `portico serve`, then a platform engineer's blueprint
// changes, one after the other, each timed while another blueprint keeps
// being written to at a steady pace. A change that is still backfilling
// shows `"change": {"phase", "done", "total"}` on GET
// /api/v1/blueprints/{bp}; its absence means done.

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"reflect"
	"strconv"
	"strings"
	"time"
)

var (
	otherRate   = flag.Int("other-rate", 200, "blueprint-change: writes per second to blueprint other")
	idleFor     = flag.Duration("idle", 10*time.Second, "blueprint-change: how long idle writes to blueprint other are measured")
	repeat      = flag.Int("repeat", 3, "blueprint-change: runs of each validating change")
	quiet       = flag.Duration("quiet", 15*time.Second, "blueprint-change: pause between the ingest and the idle measurement")
	searchEvery = flag.Duration("search-every", 500*time.Millisecond, "blueprint-change: pause between two searches while a change runs")
	settleMax   = flag.Duration("settle-timeout", 30*time.Minute, "blueprint-change: longest wait for a backfill to end")
)

// obj is a JSON object.
type obj = map[string]any

var lifecycles = []string{"experimental", "production", "deprecated"}

// lacksRunbook picks the 1 in 1,000 services without a runbook: making
// runbook required must be refused.
func lacksRunbook(i int) bool { return i%1000 == 999 }

func serviceID(i int) string { return fmt.Sprintf("svc-%07d", i) }

// change is one blueprint change on service.
type change struct {
	name    string
	edit    func(bp obj)
	refused bool          // expect 422 with the offenders listed
	maxPut  time.Duration // target for the PUT; 0: none
	minRate float64       // target in entities/s over PUT + backfill; 0: none
	search  bool          // check searches on language while it runs
}

func changes() []change {
	return []change{
		{name: "a optional property + title", maxPut: 200 * time.Millisecond, edit: func(bp obj) {
			props(bp)["notes"] = obj{"type": "string"}
			bp["title"], bp["description"] = "Service (v2)", "A deployable service, with notes"
		}},
		{name: "b widened: tier max 5→10", maxPut: 200 * time.Millisecond, edit: func(bp obj) {
			props(bp)["tier"].(obj)["maximum"] = 10
		}},
		{name: "c tightened: language maxLength", minRate: 50_000, edit: func(bp obj) {
			props(bp)["language"].(obj)["maxLength"] = 500
		}},
		{name: "d refused: runbook required", minRate: 50_000, refused: true, edit: func(bp obj) {
			s := bp["schema"].(obj)
			s["required"] = append(s["required"].([]any), "runbook")
		}},
		{name: "e language cardinality high", maxPut: 200 * time.Millisecond, minRate: 20_000, search: true, edit: func(bp obj) {
			props(bp)["language"].(obj)["cardinality"] = "high"
		}},
		{name: "g language cardinality low", maxPut: 200 * time.Millisecond, minRate: 20_000, edit: func(bp obj) {
			props(bp)["language"].(obj)["cardinality"] = "low"
		}},
		{name: "f calculation property", maxPut: 200 * time.Millisecond, edit: func(bp obj) {
			bp["calculationProperties"] = obj{"dashboard": obj{"type": "string", "jq": `"https://dash.example.com/" + .identifier`}}
		}},
	}
}

func props(bp obj) obj { return bp["schema"].(obj)["properties"].(obj) }

// serviceBlueprint is the lean service definition the changes start from,
// in the JSON shape a GET returns (arrays as []any) so that edits can
// treat it uniformly.
func serviceBlueprint() obj {
	return roundTrip(obj{
		"identifier": "service", "title": "Service", "description": "A deployable service",
		"schema": obj{"properties": obj{
			"lifecycle": obj{"type": "string", "enum": lifecycles},
			"tier":      obj{"type": "integer", "minimum": 1, "maximum": 5},
			"url":       obj{"type": "string", "format": "url"},
			"language":  obj{"type": "string"},
			"replicas":  obj{"type": "integer"},
			"cost":      obj{"type": "number"},
			"public":    obj{"type": "boolean"},
			"runbook":   obj{"type": "string", "format": "url"},
		}, "required": []string{"lifecycle"}},
		"relations": obj{"owner": obj{"target": "team"}},
	})
}

func leanService(i, _ int) map[string]any {
	p := obj{
		"lifecycle": lifecycles[i%len(lifecycles)],
		"tier":      1 + i%5,
		"url":       fmt.Sprintf("https://svc-%d.example.com", i),
		"language":  languages[i%len(languages)],
		"replicas":  i % 10,
		"cost":      float64(i%1000) / 10,
		"public":    i%2 == 0,
		"runbook":   fmt.Sprintf("https://runbooks.example.com/svc-%d", i),
	}
	if lacksRunbook(i) {
		delete(p, "runbook")
	}
	return obj{"blueprint": "service", "identifier": serviceID(i), "title": fmt.Sprintf("Service %d", i),
		"properties": p, "relations": obj{"owner": fmt.Sprintf("team-%d", i%teamsCount)}}
}

// result is one row of the table.
type result struct {
	change
	put, backfill time.Duration // backfill: 0 when the PUT left none
	other         []float64     // other-blueprint write latencies (ms) during the change
	// baseline are the other-blueprint write latencies (ms) with the
	// searcher running and no change, when the change runs one: its p99
	// is compared with that instead of idle (the searches cost by
	// themselves).
	baseline []float64
	notes    []string
	broken   []string // correctness failures: the run exits non-zero
}

func blueprintScenario(dir string, redisPort int) error {
	server, base := startServer(dir, redisPort)
	defer stop(server)
	c := newClient()
	c.base = base
	setupTeams(c)
	def := serviceBlueprint()
	c.must("PUT", "/api/v1/blueprints/service", def, 200, 201)
	c.must("PUT", "/api/v1/blueprints/other", obj{"title": "Other", "schema": obj{"properties": obj{
		"counter": obj{"type": "integer"}, "label": obj{"type": "string"}}}}, 200, 201)
	rate := ingest(c, leanService)
	log.Printf("ingested %d services: %.0f entities/s; redis used_memory %s", *entities, rate, redisMemory(redisPort))

	w := &otherWriter{c: c}
	// A large ingest leaves Redis and the server busy for a while
	// (freeing, rehashing, garbage collection): let that pass before the
	// idle latency is taken.
	time.Sleep(*quiet)
	idle := alongside(func() { time.Sleep(*idleFor) }, w.loop)
	var rows []result
	for _, ch := range changes() {
		r, next := runChange(c, w, def, ch)
		log.Printf("%s: PUT %.0f ms, backfill %.0f ms", ch.name, ms(r.put), ms(r.backfill))
		rows = append(rows, r)
		def = next
	}
	printChanges(idle, rows)
	for _, r := range rows {
		if len(r.broken) > 0 {
			return errors.New("blueprint-change: incorrect results (see the table)")
		}
	}
	return nil
}

// runChange applies ch to def with writes to blueprint other running
// alongside and returns its result and the definition now in force.
func runChange(c *client, w *otherWriter, def obj, ch change) (result, obj) {
	next := roundTrip(def)
	ch.edit(next)
	r := result{change: ch}
	var s searchStats
	// A validation at 100,000 entities lasts about a second: repeated,
	// its other-blueprint p99 rests on more than a handful of writes.
	times := 1
	if ch.minRate > 0 && !ch.search && ch.maxPut == 0 {
		times = *repeat
	}
	var puts []float64
	for i := 0; i < times; i++ {
		if i > 0 && !ch.refused {
			c.must("PUT", "/api/v1/blueprints/service", def, 200) // undo it, outside the measured window
		}
		lat := alongside(func() {
			switch {
			case ch.refused:
				r.put, r.notes, r.broken = refuse(c, next)
			case ch.search:
				s = alongside(func() { r.put, r.backfill, r.notes = apply(c, next) }, searcher{c}.loop)
			default:
				r.put, r.backfill, r.notes = apply(c, next)
			}
		}, w.loop)
		r.other = append(r.other, lat...)
		puts = append(puts, ms(r.put))
	}
	r.put = time.Duration(median(puts) * float64(time.Millisecond))
	if times > 1 {
		r.notes = append(r.notes, fmt.Sprintf("run %d times: PUT ms %v (median shown)", times, roundAll(puts)))
	}
	if ch.search {
		r.checkSearches(c, s)
		r.baseline = alongside(func() {
			alongside(func() { time.Sleep(*idleFor) }, searcher{c}.loop)
		}, w.loop)
		r.notes = append(r.notes, fmt.Sprintf("other p99 with the same searches and no change: %.2f ms (%d writes), the ratio's base", pct(r.baseline, 99), len(r.baseline)))
	}
	if ch.refused {
		return r, def
	}
	return r, next
}

// checkSearches records the searches run during the change and compares
// each language's search total with the ingested count.
func (r *result) checkSearches(c *client, s searchStats) {
	r.notes = append(r.notes, fmt.Sprintf("%d searches on language during it, %d results, %d wrong", s.searches, s.results, s.wrong))
	if s.wrong > 0 {
		r.broken = append(r.broken, "wrong search matches")
	}
	if off := searchTotalsOff(c); off != "" {
		r.broken = append(r.broken, "search totals after: "+off)
	} else {
		r.notes = append(r.notes, "search totals after it match every language")
	}
}

// apply PUTs the definition (an accepted change may answer 202 while it
// backfills) and waits for its backfill, if any.
func apply(c *client, def obj) (put, backfill time.Duration, notes []string) {
	t := time.Now()
	out := c.must("PUT", "/api/v1/blueprints/service", def, 200, 202)
	put = time.Since(t)
	onPut := changeOf(out) != nil
	backfill = settle(c, onPut)
	if backfill > 0 {
		notes = append(notes, fmt.Sprintf("backfilled in the background (progress on the PUT's answer: %v)", onPut))
	}
	return put, backfill, notes
}

// settle polls the service blueprint every 100 ms until it carries no
// change in progress and returns how long that took: 0 when no change
// was seen, on the PUT's answer (seen) or on a GET.
func settle(c *client, seen bool) time.Duration {
	start := time.Now()
	lastLog := start
	for {
		ch := changeOf(c.must("GET", "/api/v1/blueprints/service", nil, 200))
		if ch == nil && !seen {
			return 0
		}
		if ch == nil {
			return time.Since(start)
		}
		seen = true
		if time.Since(start) > *settleMax {
			log.Fatalf("the change still runs after %v: %+v", *settleMax, *ch)
		}
		if time.Since(lastLog) > 5*time.Second {
			log.Printf("  %s %d/%d", ch.Phase, ch.Done, ch.Total)
			lastLog = time.Now()
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type progress struct {
	Phase       string
	Done, Total int
}

func changeOf(blueprint []byte) *progress {
	var bp struct{ Change *progress }
	check(json.Unmarshal(blueprint, &bp))
	return bp.Change
}

// refuse PUTs a change some entities break: it must be refused with only
// such entities listed, and leave the blueprint as it was.
func refuse(c *client, def obj) (put time.Duration, notes, broken []string) {
	before := c.must("GET", "/api/v1/blueprints/service", nil, 200)
	t := time.Now()
	out := c.must("PUT", "/api/v1/blueprints/service", def, 422)
	put = time.Since(t)
	listed, wrong := offenders(out)
	notes = append(notes, fmt.Sprintf("422 listing %d offenders (%d lack runbook of %d)", len(listed), *entities/1000, *entities))
	if len(listed) == 0 || wrong > 0 {
		broken = append(broken, fmt.Sprintf("offenders: %d listed, %d of them have a runbook", len(listed), wrong))
	}
	if !sameDefinition(before, c.must("GET", "/api/v1/blueprints/service", nil, 200)) {
		broken = append(broken, "the refused change altered the blueprint")
	} else {
		notes = append(notes, "blueprint unchanged after it")
	}
	return put, notes, broken
}

// offenders reads the entities a 422 lists (details paths
// /entities/<id>/…) and counts those that do not lack a runbook.
func offenders(body []byte) (listed map[string]bool, wrong int) {
	var e struct {
		Error struct{ Details []struct{ Path string } }
	}
	check(json.Unmarshal(body, &e))
	listed = map[string]bool{}
	for _, d := range e.Error.Details {
		parts := strings.Split(d.Path, "/")
		if len(parts) < 3 || parts[1] != "entities" || listed[parts[2]] {
			continue
		}
		listed[parts[2]] = true
		i, err := strconv.Atoi(strings.TrimPrefix(parts[2], "svc-"))
		if err != nil || !lacksRunbook(i) {
			wrong++
		}
	}
	return listed, wrong
}

// sameDefinition compares two GETs of a blueprint, progress aside.
func sameDefinition(a, b []byte) bool {
	var x, y obj
	check(json.Unmarshal(a, &x))
	check(json.Unmarshal(b, &y))
	delete(x, "change")
	delete(y, "change")
	return reflect.DeepEqual(x, y)
}

// otherWriter upserts entities of blueprint other at -other-rate.
type otherWriter struct {
	c   *client
	seq int // every write changes the entity: none is a no-op
}

// loop writes at once, so that even a change shorter than the pace has a
// write beside it, then at the pace until stop.
func (w *otherWriter) loop(stop <-chan struct{}) []float64 {
	tick := time.NewTicker(time.Second / time.Duration(*otherRate))
	defer tick.Stop()
	var lat []float64
	for {
		w.seq++
		t := time.Now()
		w.c.must("PUT", fmt.Sprintf("/api/v1/blueprints/other/entities/o-%d", w.seq%1000),
			obj{"properties": obj{"counter": w.seq, "label": "bench"}}, 200, 201)
		lat = append(lat, ms(time.Since(t)))
		select {
		case <-stop:
			return lat
		case <-tick.C:
		}
	}
}

// searcher searches services by language, a search every -search-every
// (each matching a fifth of the services), a page of
// searchPage as a portal page shows them, and checks every result really
// has that language.
type searcher struct{ c *client }

// searchPage is how many entities a search during a change asks for.
const searchPage = 100

type searchStats struct{ searches, results, wrong int }

func (s searcher) loop(stop <-chan struct{}) searchStats {
	var st searchStats
	for i := 0; ; i++ {
		select {
		case <-stop:
			return st
		case <-time.After(*searchEvery):
		}
		lang := languages[i%len(languages)]
		res := searchLanguage(s.c, lang, searchPage)
		st.searches++
		st.results += len(res.Entities)
		for _, e := range res.Entities {
			if e.Blueprint != "service" || e.Properties["language"] != lang {
				st.wrong++
			}
		}
	}
}

type searchResult struct {
	Entities []struct {
		Blueprint  string
		Properties obj
	}
	Total int
}

func searchLanguage(c *client, lang string, limit int) searchResult {
	out := c.must("POST", "/api/v1/entities/search", obj{"query": obj{"combinator": "and", "rules": []any{
		obj{"property": "$blueprint", "operator": "=", "value": "service"},
		obj{"property": "language", "operator": "=", "value": lang},
	}}, "limit": limit}, 200)
	var res searchResult
	check(json.Unmarshal(out, &res))
	return res
}

// searchTotalsOff says which languages' search totals differ from the
// ingested counts ("" when none does).
func searchTotalsOff(c *client) string {
	var off []string
	for k, lang := range languages {
		want := (*entities + len(languages) - 1 - k) / len(languages)
		if got := searchLanguage(c, lang, 1).Total; got != want {
			off = append(off, fmt.Sprintf("%s %d, want %d", lang, got, want))
		}
	}
	return strings.Join(off, "; ")
}

// alongside runs loop until f returns and hands back what loop gathered.
func alongside[T any](f func(), loop func(stop <-chan struct{}) T) T {
	stop := make(chan struct{})
	done := make(chan T)
	go func() { done <- loop(stop) }()
	f()
	close(stop)
	return <-done
}

func redisMemory(port int) string {
	for _, line := range strings.Split(redisCLI(port, "INFO", "memory"), "\n") {
		if v, ok := strings.CutPrefix(line, "used_memory_human:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// roundTrip copies a JSON value deeply, in decoded JSON's types.
func roundTrip(v obj) obj {
	raw, err := json.Marshal(v)
	check(err)
	var out obj
	check(json.Unmarshal(raw, &out))
	return out
}

func printChanges(idle []float64, rows []result) {
	idleP99 := pct(idle, 99)
	fmt.Println()
	fmt.Printf("== blueprint changes on %d services (real redis-server, portico serve, HTTP) ==\n", *entities)
	fmt.Printf("writes to blueprint other, idle: p50 %.2f ms, p99 %.2f ms (%d writes at %d/s)\n", pct(idle, 50), idleP99, len(idle), *otherRate)
	fmt.Printf("%-32s %8s %11s %11s %24s  %-28s %s\n", "change", "PUT ms", "backfill ms", "entities/s", "other p99 ms (n) ×idle", "target", "result")
	for _, r := range rows {
		p99, base := pct(r.other, 99), idleP99
		if r.baseline != nil {
			base = pct(r.baseline, 99)
		}
		fmt.Printf("%-32s %8.1f %11s %11s %24s  %-28s %s\n", r.name, ms(r.put), orDash(ms(r.backfill), "%.0f"),
			orDash(r.rate(), "%.0f"), fmt.Sprintf("%.2f (%d) %.1f×", p99, len(r.other), p99/base), r.target(), r.verdict(p99/base))
	}
	fmt.Printf("other-blueprint write latency (ms) p50/p90/p99/max: idle %s\n", spread(idle))
	for _, r := range rows {
		if len(r.other) > 20 {
			fmt.Printf("  %s: %s\n", r.name[:1], spread(r.other))
		}
	}
	for _, r := range rows {
		if len(r.notes) > 0 {
			fmt.Printf("  %s: %s\n", r.name[:1], strings.Join(r.notes, "; "))
		}
	}
}

// spread summarises latencies: p50/p90/p99/max.
func spread(v []float64) string {
	return fmt.Sprintf("%.2f/%.2f/%.2f/%.2f", pct(v, 50), pct(v, 90), pct(v, 99), pct(v, 100))
}

// rate is entities/s over the PUT and its backfill, for changes that read
// or rewrite every entity.
func (r result) rate() float64 {
	if r.minRate == 0 && r.backfill == 0 {
		return 0
	}
	return float64(*entities) / (r.put + r.backfill).Seconds()
}

func (r result) target() string {
	var t []string
	if r.maxPut > 0 {
		t = append(t, fmt.Sprintf("PUT ≤ %d ms", r.maxPut.Milliseconds()))
	}
	if r.minRate > 0 {
		t = append(t, fmt.Sprintf("≥ %.0fk/s", r.minRate/1000))
	}
	return strings.Join(append(t, "≤ 2×"), ", ")
}

func (r result) verdict(ratio float64) string {
	var miss []string
	if r.maxPut > 0 && r.put > r.maxPut {
		miss = append(miss, "PUT")
	}
	if r.minRate > 0 && r.rate() < r.minRate {
		miss = append(miss, "rate")
	}
	if ratio > 2 {
		miss = append(miss, "other p99")
	}
	miss = append(miss, r.broken...)
	if len(miss) == 0 {
		return "pass"
	}
	return "FAIL: " + strings.Join(miss, ", ")
}

func orDash(v float64, format string) string {
	if v == 0 {
		return "—"
	}
	return fmt.Sprintf(format, v)
}
