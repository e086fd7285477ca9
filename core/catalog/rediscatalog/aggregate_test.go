package rediscatalog_test

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/portico-dev/portico/core/catalog"
)

// testAggregate compares Service.Aggregate with a brute-force computation
// over every entity, for a randomized catalog, across queries, functions,
// groupings and buckets; those the indexes answer read no document.
func testAggregate(t *testing.T, e *env) {
	hook := &mgetCounter{prefix: e.prefix}
	e.rdb.AddHook(hook)
	e.blueprint(`{"identifier": "team", "schema": {"properties": {"slack": {"type": "string"}}}}`)
	e.blueprint(`{"identifier": "svc",
	  "schema": {"properties": {"language": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}},
	    "tier": {"type": "integer"}, "cost": {"type": "number"}, "deployedAt": {"type": "string", "format": "date-time"},
	    "active": {"type": "boolean"}, "name": {"type": "string", "cardinality": "high"}}},
	  "relations": {"owner": {"target": "team"}},
	  "calculationProperties": {"double": {"type": "number", "jq": "(.properties.cost // 0) * 2"}}}`)
	var sc catalog.Scorecard
	if err := json.Unmarshal([]byte(`{"identifier": "readiness", "rules": [
	  {"identifier": "go", "level": "Bronze", "query": {"combinator": "and", "rules": [{"property": "language", "operator": "=", "value": "go"}]}},
	  {"identifier": "tier", "level": "Gold", "query": {"combinator": "and", "rules": [{"property": "tier", "operator": ">=", "value": 2}]}}]}`), &sc); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.PutScorecard(e.ctx, "svc", &sc); err != nil {
		t.Fatal(err)
	}
	e.blueprint(`{"identifier": "team", "schema": {"properties": {"slack": {"type": "string"}}},
	  "aggregationProperties": {"services": {"target": "svc", "relation": "owner", "func": "count"},
	    "spend": {"target": "svc", "relation": "owner", "func": "sum", "property": "cost"}}}`)
	e.blueprint(`{"identifier": "job",
	  "schema": {"properties": {"language": {"type": "string"}, "cost": {"type": "number"}, "deployedAt": {"type": "string", "format": "date-time"}}}}`)

	rng := rand.New(rand.NewSource(14))
	pick := func(list ...string) string { return list[rng.Intn(len(list))] }
	maybe := func(s string) string {
		if rng.Intn(5) == 0 {
			return ""
		}
		return s
	}
	var items []catalog.WriteItem
	for i := 0; i < 6; i++ {
		items = append(items, item(t, "team", fmt.Sprintf(`{"identifier": "t%d"}`, i)))
	}
	entity := func(bp string, i int) string {
		var props []string
		add := func(s string) {
			if s != "" {
				props = append(props, s)
			}
		}
		add(maybe(fmt.Sprintf(`"language": %q`, pick("go", "python", "rust", ""))))
		add(maybe(fmt.Sprintf(`"cost": %g`, float64(rng.Intn(200))/2)))
		add(maybe(fmt.Sprintf(`"deployedAt": %q`, t0.Add(time.Duration(rng.Intn(90*24))*time.Hour).Add(-time.Duration(rng.Intn(3))*time.Hour).In(time.FixedZone("", -3600)).Format(time.RFC3339))))
		var rels, team, ds string
		if bp == "svc" {
			add(maybe(fmt.Sprintf(`"tier": %d`, rng.Intn(4))))
			add(maybe(fmt.Sprintf(`"active": %t`, rng.Intn(2) == 0)))
			add(maybe(fmt.Sprintf(`"name": "n%d"`, rng.Intn(40))))
			tags := []string{}
			for range rng.Intn(4) {
				tags = append(tags, fmt.Sprintf("%q", pick("web", "api", "pci")))
			}
			add(maybe(`"tags": [` + strings.Join(tags, ", ") + `]`))
			rels = maybe(fmt.Sprintf(`"owner": "t%d"`, rng.Intn(6)))
		}
		var teams []string
		for _, tm := range []string{"a", "b", "c"} {
			if rng.Intn(3) == 0 {
				teams = append(teams, fmt.Sprintf("%q", tm))
			}
		}
		team = strings.Join(teams, ", ")
		if rng.Intn(2) == 0 {
			ds = `, "datasource": "github"`
		}
		return fmt.Sprintf(`{"identifier": "%s%03d", "team": [%s], "properties": {%s}, "relations": {%s}%s}`, bp, i, team, strings.Join(props, ", "), rels, ds)
	}
	for i := 0; i < 240; i++ {
		bp := pick("svc", "svc", "job")
		e.clock.Advance(time.Duration(rng.Intn(20)) * time.Hour)
		items = append(items, item(t, bp, entity(bp, i)))
	}
	res, err := e.svc.Write(catalog.WithActor(e.ctx, catalog.Actor{ID: "alice", Datasource: "github"}), items)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("item %d: %v", r.Index, r.Err)
		}
	}
	for {
		n, err := e.svc.RunDeriveOnce(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}

	var all []*catalog.Entity
	for _, bp := range []string{"team", "svc", "job"} {
		page, err := e.svc.ListEntities(e.ctx, bp, "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page.Entities...)
	}

	// The derived values are there to group by.
	for groupBy, want := range map[string]func(any) bool{
		"scorecards.readiness.level": func(k any) bool { return k == "Gold" },
		"services":                   func(k any) bool { f, _ := k.(float64); return f > 0 },
	} {
		res, err := e.svc.Aggregate(e.ctx, catalog.AggregateQuery{Func: "count", GroupBy: groupBy})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(res.Groups, func(g catalog.AggregateGroup) bool { return want(g.Key) }) {
			t.Fatalf("count by %s: no group of a value in %+v", groupBy, res.Groups)
		}
	}

	queries := []string{
		``,
		`{"property": "language", "operator": "=", "value": "go"}`,
		`{"property": "tier", "operator": ">=", "value": 2}`,
		`{"property": "name", "operator": "beginsWith", "value": "n1"}`,
		`{"property": "$blueprint", "operator": "in", "value": ["svc", "job"]}`,
		`{"property": "cost", "operator": "between", "value": [10, 60]}`,
		`{"property": "language", "operator": "contains", "value": "o"}`, // no index answers it
		`{"property": "double", "operator": ">", "value": 50}`,           // computed
	}
	groupBys := []string{"", "language", "$team", "tags", "active", "tier", "$blueprint", "$datasource", "name", "owner", "double", "scorecards.readiness.level", "services"}
	// indexed groupings: answered without documents when the query is.
	indexed := map[string]bool{"": true, "language": true, "$team": true, "tags": true, "active": true, "tier": true, "$blueprint": true, "$datasource": true, "name": true,
		"scorecards.readiness.level": true, "services": true}
	buckets := []*catalog.AggregateBucket{nil, {Property: "$createdAt", Interval: "week"}, {Property: "deployedAt", Interval: "month"}, {Property: "$updatedAt", Interval: "day"}}
	funcs := []string{"count", "sum", "avg", "min", "max", "median"}
	properties := []string{"cost", "tier", "double", "spend"}
	n := 0
	for qi, qs := range queries {
		for gi, groupBy := range groupBys {
			for bi, bucket := range buckets {
				n++
				// Each combination twice: a plain count, and another
				// function (or a count of a property).
				for _, fn := range []string{"count", funcs[n%len(funcs)]} {
					q := catalog.AggregateQuery{Func: fn, GroupBy: groupBy, Bucket: bucket}
					if fn != "count" || n%6 == 0 {
						q.Property = properties[(qi+gi+bi)%len(properties)]
					}
					var rule *catalog.Rule
					if qs != "" {
						var err error
						if rule, err = catalog.DecodeQuery([]byte(`{"combinator": "and", "rules": [` + qs + `]}`)); err != nil {
							t.Fatal(err)
						}
					}
					q.Query = rule
					name := fmt.Sprintf("%s %s by %q bucket %v query %s", q.Func, q.Property, groupBy, bucket, qs)
					hook.keys.Store(0)
					hook.on.Store(true)
					got, err := e.svc.Aggregate(e.ctx, q)
					hook.on.Store(false)
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					want := bruteAggregate(t, all, q, rule)
					gotJS, _ := json.Marshal(got.Groups)
					wantJS, _ := json.Marshal(want)
					if string(gotJS) != string(wantJS) {
						t.Fatalf("%s:\ngot  %s\nwant %s", name, gotJS, wantJS)
					}
					computed := q.Property == "double" || !indexed[groupBy] || qi >= 6
					if docs := hook.keys.Load(); !computed && docs > 0 {
						t.Errorf("%s: read %d documents, the indexes answer it", name, docs)
					}
				}
			}
		}
	}
}

// bruteAggregate computes q over every entity the rule matches, one
// entity at a time.
func bruteAggregate(t *testing.T, all []*catalog.Entity, q catalog.AggregateQuery, rule *catalog.Rule) []catalog.AggregateGroup {
	t.Helper()
	type gk struct {
		key    string // JSON of the key
		bucket time.Time
	}
	type acc struct {
		key    any
		count  int
		values []float64
	}
	groups := map[gk]*acc{}
	value := func(e *catalog.Entity, name string) any {
		if v, ok := catalog.Lookup(e, e.Properties, name); ok {
			return v
		}
		return nil
	}
	for _, e := range all {
		if rule != nil && !catalog.Match(rule, e, e.Properties, t0, nil) {
			continue
		}
		var bucket time.Time
		if q.Bucket != nil {
			var at time.Time
			switch v := value(e, q.Bucket.Property).(type) {
			case time.Time:
				at = v
			case string:
				at, _ = time.Parse(time.RFC3339, v)
			}
			if at.IsZero() {
				continue
			}
			at = at.UTC()
			switch q.Bucket.Interval {
			case "day":
				bucket = time.Date(at.Year(), at.Month(), at.Day(), 0, 0, 0, 0, time.UTC)
			case "month":
				bucket = time.Date(at.Year(), at.Month(), 1, 0, 0, 0, 0, time.UTC)
			case "week":
				for bucket = time.Date(at.Year(), at.Month(), at.Day(), 0, 0, 0, 0, time.UTC); bucket.Weekday() != time.Monday; {
					bucket = bucket.AddDate(0, 0, -1)
				}
			}
		}
		var keys []any
		if q.GroupBy != "" {
			var vals []any
			switch v := value(e, q.GroupBy).(type) {
			case []any:
				vals = v
			case []string:
				for _, s := range v {
					vals = append(vals, s)
				}
			case string:
				if v != "" || !strings.HasPrefix(q.GroupBy, "$") {
					vals = []any{v}
				}
			case nil:
			default:
				vals = []any{v}
			}
			for _, v := range vals {
				if !slices.Contains(keys, v) {
					keys = append(keys, v)
				}
			}
		}
		if len(keys) == 0 {
			keys = []any{nil}
		}
		pv := value(e, q.Property)
		for _, k := range keys {
			js, _ := json.Marshal(k)
			g := groups[gk{string(js), bucket}]
			if g == nil {
				g = &acc{key: k}
				groups[gk{string(js), bucket}] = g
			}
			if f, ok := pv.(float64); ok {
				g.values = append(g.values, f)
			}
			if q.Property == "" || (pv != nil && !(fmt.Sprint(pv) == "[]")) {
				g.count++
			}
		}
	}
	var out []catalog.AggregateGroup
	for id, g := range groups {
		ag := catalog.AggregateGroup{Key: g.key}
		if q.Bucket != nil {
			b := id.bucket
			ag.Bucket = &b
		}
		vs := slices.Clone(g.values)
		sort.Float64s(vs)
		sum := 0.0
		for _, v := range g.values {
			sum += v
		}
		switch {
		case q.Func == "count":
			ag.Value = g.count
		case q.Func == "sum":
			ag.Value = sum
		case len(vs) == 0:
		case q.Func == "avg":
			ag.Value = sum / float64(len(vs))
		case q.Func == "min":
			ag.Value = vs[0]
		case q.Func == "max":
			ag.Value = vs[len(vs)-1]
		case q.Func == "median" && len(vs)%2 == 1:
			ag.Value = vs[len(vs)/2]
		case q.Func == "median":
			ag.Value = (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
		}
		out = append(out, ag)
	}
	rank := func(v any) (int, float64, string) {
		switch x := v.(type) {
		case nil:
			return 0, 0, ""
		case bool:
			if x {
				return 2, 0, ""
			}
			return 1, 0, ""
		case float64:
			return 3, x, ""
		}
		return 4, 0, v.(string)
	}
	sort.Slice(out, func(i, j int) bool {
		ri, fi, si := rank(out[i].Key)
		rj, fj, sj := rank(out[j].Key)
		switch {
		case ri != rj:
			return ri < rj
		case fi != fj:
			return fi < fj
		case si != sj:
			return si < sj
		}
		return out[i].Bucket != nil && out[i].Bucket.Before(*out[j].Bucket)
	})
	if q.GroupBy == "scorecards.readiness.level" { // default levels, in their order, the ungraded last
		level := func(k any) int {
			for i, l := range catalog.DefaultLevels {
				if l.Title == k {
					return i
				}
			}
			return len(catalog.DefaultLevels)
		}
		sort.SliceStable(out, func(i, j int) bool { return level(out[i].Key) < level(out[j].Key) })
	}
	if out == nil {
		out = []catalog.AggregateGroup{}
	}
	return out
}
