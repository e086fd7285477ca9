package main

// The scorecard scenario (issue 14): -entities services in a real Redis
// behind `portico serve`; single-entity writes are timed without
// scorecards, then 5 scorecards of 10 rules each are defined and the
// regrading of every service timed (GET .../scorecards/{id} shows
// "evaluation": {"state", "done", "total"}), then the same writes are timed
// again: the difference is what grading adds to a write.

import (
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"time"
)

// scorecardDefs are 5 scorecards of 10 rules each over the lean service's
// properties, one rule of each reading the owner through a relation path.
func scorecardDefs() []obj {
	levels := []string{"Bronze", "Silver", "Gold"}
	var out []obj
	for s := 0; s < 5; s++ {
		rule := func(prop, op string, v any) obj {
			r := obj{"property": prop, "operator": op}
			if v != nil {
				r["value"] = v
			}
			return obj{"combinator": "and", "rules": []any{r}}
		}
		queries := []obj{
			rule("lifecycle", "=", "production"),
			rule("tier", "<=", 2+s%3),
			rule("url", "beginsWith", "https://"),
			rule("language", "in", []any{"go", "rust", "java"}),
			rule("replicas", ">=", 2),
			rule("cost", "<", 50+10*s),
			rule("public", "=", false),
			rule("runbook", "isNotEmpty", nil),
			rule("owner.slack", "isNotEmpty", nil),
			rule("$title", "beginsWith", "Service"),
		}
		var rules []any
		for i, q := range queries {
			rules = append(rules, obj{"identifier": fmt.Sprintf("r%d", i), "level": levels[i%3], "query": q})
		}
		out = append(out, obj{"identifier": fmt.Sprintf("sc%d", s), "title": fmt.Sprintf("Scorecard %d", s), "rules": rules})
	}
	return out
}

func scorecardScenario(dir string, redisPort int) error {
	server, base := startServer(dir, redisPort)
	defer stop(server)
	c := newClient()
	c.base = base
	setupTeams(c)
	c.must("PUT", "/api/v1/blueprints/service", serviceBlueprint(), 200, 201)
	rate := ingest(c, leanService)
	log.Printf("ingested %d services: %.0f entities/s", *entities, rate)
	time.Sleep(*quiet)

	var without, with [][]float64
	for r := 0; r < *repeat; r++ {
		without = append(without, writeLatencies(c, r))
	}
	start := time.Now()
	defs := scorecardDefs()
	for _, sc := range defs {
		c.must("PUT", "/api/v1/blueprints/service/scorecards/"+sc["identifier"].(string), sc, 200, 201)
	}
	if err := waitGraded(c, "sc4", *settleMax); err != nil {
		return err
	}
	took := time.Since(start)
	log.Printf("first grading: %d services × 5 scorecards in %.1f s (%.0f entities/s)", *entities, took.Seconds(), float64(*entities)/took.Seconds())
	if err := checkLevels(c); err != nil {
		return err
	}
	// A changed rule regrades every service against all 5 scorecards.
	var rates []float64
	for r := 0; r < *repeat; r++ {
		sc := defs[0]
		rule := sc["rules"].([]any)[5].(obj)
		rule["query"] = obj{"combinator": "and", "rules": []any{obj{"property": "cost", "operator": "<", "value": 40 + r}}}
		start := time.Now()
		c.must("PUT", "/api/v1/blueprints/service/scorecards/sc0", sc, 200)
		if err := waitGraded(c, "sc0", *settleMax); err != nil {
			return err
		}
		took := time.Since(start)
		rates = append(rates, float64(*entities)/took.Seconds())
		log.Printf("regrading after a rule change: %.1f s, %.0f entity-evaluations/s (each entity against 5 scorecards, 50 rules)", took.Seconds(), rates[r])
	}
	evals := median(rates)
	if err := checkLevels(c); err != nil {
		return err
	}
	time.Sleep(*quiet)
	for r := 0; r < *repeat; r++ {
		with = append(with, writeLatencies(c, r))
	}
	fmt.Println("\nsingle-entity PUT latency (ms), each run", *upserts, "writes:")
	fmt.Println("run  without p50/p99   with 5×10 rules p50/p99   added p99")
	var added []float64
	for r := range without {
		a := pct(with[r], 99) - pct(without[r], 99)
		added = append(added, a)
		fmt.Printf("%d    %5.2f / %5.2f       %5.2f / %5.2f              %+5.2f\n", r+1,
			pct(without[r], 50), pct(without[r], 99), pct(with[r], 50), pct(with[r], 99), a)
	}
	fmt.Printf("median added p99: %+.2f ms (target ≤ 5 ms); regrading: median %.0f entity-evaluations/s of %v (target ≥ 20,000)\n", median(added), evals, roundAll(rates))
	return nil
}

// writeLatencies times *upserts single-entity PUTs of distinct services,
// each changing one property (run r picks other values).
func writeLatencies(c *client, r int) []float64 {
	var lat []float64
	for i := 0; i < *upserts; i++ {
		n := (i*7919 + r*104729) % *entities
		e := leanService(n, 0)
		e["properties"].(obj)["replicas"] = 10 + (i+r)%5
		delete(e, "blueprint")
		t := time.Now()
		c.must("PUT", "/api/v1/blueprints/service/entities/"+serviceID(n), e, 200)
		lat = append(lat, ms(time.Since(t)))
	}
	return lat
}

// waitGraded waits until scorecard id's evaluation is done.
func waitGraded(c *client, id string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	last := time.Now()
	for time.Now().Before(deadline) {
		var sc struct {
			Evaluation struct {
				State       string
				Done, Total int
			}
		}
		check(json.Unmarshal(c.must("GET", "/api/v1/blueprints/service/scorecards/"+id, nil, 200), &sc))
		if sc.Evaluation.State == "done" && sc.Evaluation.Done >= *entities {
			return nil
		}
		if time.Since(last) > 5*time.Second {
			log.Printf("grading: %d/%d", sc.Evaluation.Done, sc.Evaluation.Total)
			last = time.Now()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("scorecards: grading did not finish in time")
}

// checkLevels checks that every service has a level in each scorecard:
// the level searches' totals add up to the services.
func checkLevels(c *client) error {
	for _, sc := range scorecardDefs() {
		id := sc["identifier"].(string)
		sum := 0
		for _, lv := range []string{"Basic", "Bronze", "Silver", "Gold"} {
			q := obj{"query": obj{"combinator": "and", "rules": []any{
				obj{"property": "$blueprint", "operator": "=", "value": "service"},
				obj{"property": "scorecards." + id + ".level", "operator": "=", "value": lv}}}, "limit": 1}
			var res struct{ Total int }
			check(json.Unmarshal(c.must("POST", "/api/v1/entities/search", q, 200), &res))
			sum += res.Total
		}
		if sum != *entities {
			return fmt.Errorf("scorecard %s: levels of %d services, want %d", id, sum, *entities)
		}
	}
	return nil
}
