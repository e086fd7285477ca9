// Command catalog is the catalog load test behind `make bench`: it starts a
// real redis-server and `bin/portico serve`, then measures through the HTTP
// API bulk ingest of 100,000 entities, indexed search latency, single
// upsert latency and the server's RSS, and compares ingest with
// `redis-benchmark -P 64` HSET of the same payload size.
//
// With -scenario blueprint-change it measures blueprint changes instead
// (blueprints.go).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

var (
	entities    = flag.Int("entities", 100_000, "entities to ingest")
	batch       = flag.Int("batch", 5000, "entities per bulk request")
	workers     = flag.Int("workers", 4, "concurrent bulk requests")
	rounds      = flag.Int("rounds", 3, "ingest rounds (median reported)")
	searches    = flag.Int("searches", 2000, "search requests")
	upserts     = flag.Int("upserts", 2000, "single-entity upserts")
	stats       = flag.Bool("redis-stats", false, "print Redis command statistics of the last ingest round")
	binary      = flag.String("portico", "bin/portico", "portico binary")
	scenario    = flag.String("scenario", "ingest", "ingest (bulk ingest, search, upsert, RSS), blueprint-change or scorecards")
	teamsCount  = 100
	languages   = []string{"go", "python", "java", "rust", "typescript"}
	environment = []string{"prod", "staging", "dev"}
)

const token = "bench-token"

func main() {
	flag.Parse()
	log.SetFlags(0)
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	if *scenario != "ingest" && *scenario != "blueprint-change" && *scenario != "scorecards" {
		return fmt.Errorf("unknown -scenario %q", *scenario)
	}
	dir, err := os.MkdirTemp("", "portico-bench-")
	check(err)
	defer os.RemoveAll(dir)

	redis, redisPort := startRedis(dir)
	defer stop(redis)
	switch *scenario {
	case "blueprint-change":
		return blueprintScenario(dir, redisPort)
	case "scorecards":
		return scorecardScenario(dir, redisPort)
	}
	ingestScenario(dir, redis, redisPort)
	return nil
}

func ingestScenario(dir string, redis *exec.Cmd, redisPort int) {
	c := newClient()
	var rates []float64
	var server *exec.Cmd
	for r := 0; r < *rounds; r++ {
		// Each round starts from an empty Redis and a fresh server (which
		// re-creates the built-in blueprints at start-up).
		if server != nil {
			stop(server)
		}
		redisCLI(redisPort, "FLUSHALL")
		redisCLI(redisPort, "CONFIG", "RESETSTAT")
		server, c.base = startServer(dir, redisPort)
		setup(c)
		redisCPU, serverCPU := cpuTime(redis.Process.Pid), cpuTime(server.Process.Pid)
		rate := ingest(c, service)
		rates = append(rates, rate)
		perEntity := func(before, after time.Duration) float64 {
			return float64((after - before).Microseconds()) / float64(*entities)
		}
		log.Printf("round %d: ingest %d entities: %.0f entities/s; CPU per entity: redis-server %.1f µs, portico %.1f µs",
			r+1, *entities, rate, perEntity(redisCPU, cpuTime(redis.Process.Pid)), perEntity(serverCPU, cpuTime(server.Process.Pid)))
	}
	defer stop(server)
	ingestRate := median(rates)
	if *stats {
		redisStats(redisPort)
	}

	mem := rssMiB(server.Process.Pid)
	searchP50, searchP99, hits := searchLatency(c)
	member := memberClient(c)
	fSearchP50, fSearchP99, fHits := searchLatency(member)
	upsertP50, upsertP99 := upsertLatency(c)
	ceiling := hsetCeiling(redisPort)

	fmt.Println()
	fmt.Println("== catalog benchmark (median of rounds; real redis-server, portico serve, HTTP) ==")
	fmt.Printf("bulk ingest:        %8.0f entities/s  (target ≥ 20,000; rounds %v)\n", ingestRate, roundAll(rates))
	fmt.Printf("redis ceiling:      %8.0f HSET/s with -P 64 -d 1000; ingest = %.1f%% of it\n", ceiling, 100*ingestRate/ceiling)
	fmt.Printf("search p50 / p99:   %6.2f ms / %6.2f ms  (target p99 ≤ 20 ms; 2 indexed = + relatedTo, avg %d hits of %d)\n", searchP50, searchP99, hits, *entities)
	fmt.Printf("filtered search:    %6.2f ms / %6.2f ms  (a member token, blueprint read.ownedOnly: avg %d visible hits)\n", fSearchP50, fSearchP99, fHits)
	fmt.Printf("upsert p50 / p99:   %6.2f ms / %6.2f ms  (target p50 ≤ 2 ms)\n", upsertP50, upsertP99)
	fmt.Printf("server RSS loaded:  %8.1f MiB  (target ≤ 300 MiB; anonymous %.1f MiB, file-backed binary pages %.1f MiB)\n", mem.total, mem.anon, mem.file)
}

// startRedis starts an empty, non-persistent redis-server on a free port.
func startRedis(dir string) (*exec.Cmd, int) {
	port := freePort()
	redis := start(dir, "redis-server", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no", "--dir", dir)
	waitTCP(fmt.Sprintf("127.0.0.1:%d", port))
	return redis, port
}

// startServer starts `portico serve` on a free port against the Redis on
// redisPort and returns it with its base URL.
func startServer(dir string, redisPort int) (*exec.Cmd, string) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort())
	srv := start(dir, *binary, "serve", "--addr", addr,
		"--redis-url", fmt.Sprintf("redis://127.0.0.1:%d/0", redisPort), "--admin-token", token, "--pprof-addr", os.Getenv("BENCH_PPROF"))
	waitTCP(addr)
	return srv, "http://" + addr
}

type client struct {
	base  string
	http  *http.Client
	token string
}

// newClient is an admin client; its base is set once the server is up.
func newClient() *client {
	return &client{http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
}

func (c *client) do(method, path string, body any) (int, []byte) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		check(err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	check(err)
	req.Header.Set("Authorization", "Bearer "+c.bearer())
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	check(err)
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func (c *client) bearer() string {
	if c.token != "" {
		return c.token
	}
	return token
}

// memberClient makes the service blueprint owner-readable only
// (read.ownedOnly) and returns a client acting as a member of team-1 and
// team-2, so searches go through read filtering.
func memberClient(admin *client) *client {
	bp := admin.must("GET", "/api/v1/blueprints/service", nil, 200)
	var def map[string]any
	check(json.Unmarshal(bp, &def))
	for _, k := range []string{"createdAt", "updatedAt"} {
		delete(def, k)
	}
	def["permissions"] = map[string]any{"read": map[string]any{"ownedOnly": true}}
	admin.must("PUT", "/api/v1/blueprints/service", def, 200)
	for _, t := range []string{"team-1", "team-2"} {
		admin.must("PUT", "/api/v1/blueprints/_team/entities/"+t, map[string]any{}, 200, 201)
	}
	admin.must("PUT", "/api/v1/blueprints/_user/entities/member@example.com", map[string]any{
		"properties": map[string]any{"role": "member"}, "relations": map[string]any{"teams": []string{"team-1", "team-2"}}}, 200, 201)
	out := admin.must("POST", "/api/v1/tokens", map[string]any{"name": "bench", "user": "member@example.com", "scopes": []string{"read"}}, 201)
	var tok struct{ Token string }
	check(json.Unmarshal(out, &tok))
	return &client{base: admin.base, http: admin.http, token: tok.Token}
}

func (c *client) must(method, path string, body any, want ...int) []byte {
	code, out := c.do(method, path, body)
	for _, w := range want {
		if code == w {
			return out
		}
	}
	log.Fatalf("%s %s: %d %s", method, path, code, out)
	return nil
}

func setup(c *client) {
	setupTeams(c)
	props := map[string]any{
		"language":    map[string]any{"type": "string", "enum": languages},
		"environment": map[string]any{"type": "string"},
		"tier":        map[string]any{"type": "integer", "minimum": 1, "maximum": 3},
		"replicas":    map[string]any{"type": "integer"},
		"cost":        map[string]any{"type": "number"},
		"public":      map[string]any{"type": "boolean"},
		"repo":        map[string]any{"type": "string", "format": "url"},
		"oncall":      map[string]any{"type": "string", "format": "email"},
		"lifecycle":   map[string]any{"type": "string"},
		"tags":        map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
		"description": map[string]any{"type": "string"},
	}
	c.must("PUT", "/api/v1/blueprints/service", map[string]any{"title": "Service",
		"schema": map[string]any{"properties": props, "required": []string{"language"}},
		"relations": map[string]any{
			"owner":     map[string]any{"target": "team"},
			"dependsOn": map[string]any{"target": "service", "many": true},
		}}, 200, 201)
}

// setupTeams creates blueprint team and its teamsCount entities.
func setupTeams(c *client) {
	c.must("PUT", "/api/v1/blueprints/team", map[string]any{"title": "Team", "schema": map[string]any{
		"properties": map[string]any{"slack": map[string]any{"type": "string"}}}}, 200, 201)
	var teams []any
	for i := 0; i < teamsCount; i++ {
		teams = append(teams, map[string]any{"blueprint": "team", "identifier": fmt.Sprintf("team-%d", i), "properties": map[string]any{"slack": "#t"}})
	}
	c.must("POST", "/api/v1/entities/bulk", map[string]any{"entities": teams}, 200)
}

func service(i, batchStart int) map[string]any {
	rel := map[string]any{"owner": fmt.Sprintf("team-%d", i%teamsCount)}
	if i > batchStart {
		rel["dependsOn"] = []string{fmt.Sprintf("svc-%06d", i-1)}
	}
	return map[string]any{
		"blueprint":  "service",
		"identifier": fmt.Sprintf("svc-%06d", i),
		"title":      fmt.Sprintf("Service %d", i),
		"team":       []string{fmt.Sprintf("team-%d", i%teamsCount)},
		"properties": map[string]any{
			"language":    languages[i%len(languages)],
			"environment": environment[i%len(environment)],
			"tier":        1 + i%3,
			"replicas":    i % 10,
			"cost":        float64(i%1000) / 10,
			"public":      i%2 == 0,
			"repo":        fmt.Sprintf("https://git.example.com/org/svc-%d", i),
			"oncall":      fmt.Sprintf("oncall-%d@example.com", i%50),
			"lifecycle":   "production",
			"tags":        []string{"backend", "tier-" + strconv.Itoa(1+i%3)},
			"description": strings.Repeat("lorem ipsum dolor sit amet ", 24),
		},
		"relations": rel,
	}
}

// ingest posts -entities entities, entity(i, first index of its batch), in
// batches from several workers and returns entities per second, end to end.
func ingest(c *client, entity func(i, batchStart int) map[string]any) float64 {
	type job struct{ start, end int }
	jobs := make(chan job)
	var wg sync.WaitGroup
	// Encode every batch before the clock starts: the client's JSON work is
	// not the server's.
	bodies := map[int][]byte{}
	for s := 0; s < *entities; s += *batch {
		e := min(s+*batch, *entities)
		var items []any
		for i := s; i < e; i++ {
			items = append(items, entity(i, s))
		}
		raw, err := json.Marshal(map[string]any{"entities": items})
		check(err)
		bodies[s] = raw
	}
	start := time.Now()
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				req, _ := http.NewRequest("POST", c.base+"/api/v1/entities/bulk", bytes.NewReader(bodies[j.start]))
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := c.http.Do(req)
				check(err)
				out, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					log.Fatalf("bulk: %d %.500s", resp.StatusCode, out)
				}
			}
		}()
	}
	for s := 0; s < *entities; s += *batch {
		jobs <- job{s, min(s+*batch, *entities)}
	}
	close(jobs)
	wg.Wait()
	return float64(*entities) / time.Since(start).Seconds()
}

func searchLatency(c *client) (p50, p99 float64, avgHits int) {
	var lat []float64
	total := 0
	for i := 0; i < *searches; i++ {
		q := map[string]any{"query": map[string]any{"combinator": "and", "rules": []any{
			map[string]any{"property": "language", "operator": "=", "value": languages[i%len(languages)]},
			map[string]any{"property": "environment", "operator": "=", "value": environment[i%len(environment)]},
			map[string]any{"operator": "relatedTo", "blueprint": "team", "identifier": fmt.Sprintf("team-%d", i%teamsCount), "direction": "upstream"},
		}}, "limit": 100}
		t := time.Now()
		out := c.must("POST", "/api/v1/entities/search", q, 200)
		lat = append(lat, ms(time.Since(t)))
		var res struct{ Total int }
		check(json.Unmarshal(out, &res))
		total += res.Total
	}
	if total == 0 {
		log.Fatal("searches matched nothing: the benchmark is wrong")
	}
	return pct(lat, 50), pct(lat, 99), total / *searches
}

func upsertLatency(c *client) (p50, p99 float64) {
	var lat []float64
	for i := 0; i < *upserts; i++ {
		e := service(i, i)
		e["properties"].(map[string]any)["replicas"] = 100 + i
		delete(e, "blueprint")
		t := time.Now()
		c.must("PUT", fmt.Sprintf("/api/v1/blueprints/service/entities/svc-%06d", i), e, 200)
		lat = append(lat, ms(time.Since(t)))
	}
	return pct(lat, 50), pct(lat, 99)
}

var rpsLine = regexp.MustCompile(`([0-9.]+) requests per second`)

// hsetCeiling is redis-benchmark's HSET throughput with 1 KB values and
// pipelining 64: what the Redis server alone can absorb on this machine.
func hsetCeiling(port int) float64 {
	out, err := exec.Command("redis-benchmark", "-p", strconv.Itoa(port), "-P", "64", "-n", "1000000",
		"-d", "1000", "-r", "100000", "-t", "hset", "-q").CombinedOutput()
	check(err)
	m := rpsLine.FindStringSubmatch(string(out))
	if m == nil {
		log.Fatalf("redis-benchmark: %s", out)
	}
	f, _ := strconv.ParseFloat(m[1], 64)
	return f
}

// cpuTime is the user + system CPU a process has used so far.
func cpuTime(pid int) time.Duration {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	check(err)
	// Fields after the parenthesised command name; utime and stime are
	// the 14th and 15th fields of the whole line, in clock ticks (100/s).
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

type rss struct{ total, anon, file float64 }

// rssMiB reads the server's resident set: in all, and split into anonymous
// memory (heap, stacks) and file-backed pages (mostly the executable).
func rssMiB(pid int) rss {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	check(err)
	var out rss
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			out.total = kb / 1024
		case "RssAnon:":
			out.anon = kb / 1024
		case "RssFile:":
			out.file = kb / 1024
		}
	}
	return out
}

func redisCLI(port int, args ...string) string {
	out, err := exec.Command("redis-cli", append([]string{"-p", strconv.Itoa(port)}, args...)...).CombinedOutput()
	if err != nil {
		log.Fatalf("redis-cli %v: %v %s", args, err, out)
	}
	return string(out)
}

func start(dir, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	logf, err := os.Create(filepath.Join(dir, filepath.Base(name)+".log"))
	check(err)
	cmd.Stdout, cmd.Stderr = logf, logf
	// A fatal error exits without running the deferred stops: the kernel
	// then kills the children, a loaded redis-server included.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Fatalf("start %s: %v (is it installed / built? run `make build`, `apt-get install -y redis-server`)", name, err)
	}
	return cmd
}

func stop(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
	}
}

func waitTCP(addr string) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	log.Fatalf("%s did not come up", addr)
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func pct(v []float64, p int) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func median(v []float64) float64 { return pct(v, 50) }

func roundAll(v []float64) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

// redisStats prints where Redis spent its time (INFO commandstats).
func redisStats(port int) {
	out, err := exec.Command("redis-cli", "-p", strconv.Itoa(port), "INFO", "commandstats").Output()
	check(err)
	fmt.Println("redis commandstats (last round):")
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "cmdstat_") {
			fmt.Println("  " + strings.TrimSpace(line))
		}
	}
}
