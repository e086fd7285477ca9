package integrations_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
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
	"github.com/portico-dev/portico/host/integrations"
	"github.com/portico-dev/portico/host/internal/plugintest"
	"github.com/portico-dev/portico/host/loader"
	"github.com/portico-dev/portico/host/redishost"
	"github.com/portico-dev/portico/host/registry"
	"github.com/portico-dev/portico/internal/logbuf"
	"github.com/portico-dev/portico/internal/secretbox"
)

func TestMain(m *testing.M) { os.Exit(plugintest.Main(m)) }

const (
	token       = "test-admin-token"
	examplePkg  = "./plugins/example"
	upgradedPkg = "./host/integrations/testdata/upgraded"
	impostorPkg = "./host/integrations/testdata/impostor"
	// badSchemaPkg declares config and inputs schemas that do not compile.
	badSchemaPkg = "./host/integrations/testdata/badschema"
)

// testKeys seal the secrets of every test portal, as in production.
var testKeys = func() *secretbox.Keyring {
	k, err := secretbox.GenerateKey()
	if err != nil {
		panic(err)
	}
	r, err := secretbox.ParseKeyring(k)
	if err != nil {
		panic(err)
	}
	return r
}()

// portal is Portico's HTTP API over a catalog on miniredis, with the plugin
// registry and integrations wired in, and every log line captured.
type portal struct {
	t    testing.TB
	rdb  redis.UniversalClient
	url  string
	cat  *catalog.Service
	mgr  *integrations.Manager
	logs *logbuf.Buffer
}

// Its installations start no resync by themselves: tests resync
// explicitly and check what that resync did (newInstallResyncPortal
// keeps the production behaviour).
func newPortal(t testing.TB, rdb redis.UniversalClient, opts integrations.Options) *portal {
	t.Helper()
	opts.NoInstallResync = true
	return buildPortal(t, rdb, opts, false)
}

// newInstallResyncPortal is newPortal whose new installations start their
// first resync themselves, as in production.
func newInstallResyncPortal(t testing.TB) *portal {
	t.Helper()
	return buildPortal(t, nil, integrations.Options{}, false)
}

// newAccessPortal is newPortal with the access layer wired in as in
// production: users, tokens and the catalog's Authorizer.
func newAccessPortal(t testing.TB) *portal {
	t.Helper()
	return buildPortal(t, nil, integrations.Options{NoInstallResync: true}, true)
}

func buildPortal(t testing.TB, rdb redis.UniversalClient, opts integrations.Options, withAccess bool) *portal {
	t.Helper()
	if rdb == nil {
		mr := miniredis.RunT(t)
		c := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { c.Close() })
		rdb = c
	}
	logs := &logbuf.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var catOpts catalog.Options
	if withAccess {
		catOpts.Authorizer = access.Authorizer{}
	}
	cat := catalog.NewService(rediscatalog.New(rdb, rediscatalog.Options{}), catOpts)
	ld, err := loader.New(plugintest.CacheDir(), logger)
	if err != nil {
		t.Fatal(err)
	}
	store := redishost.New(rdb, redishost.Options{Keyring: testKeys})
	opts.Catalog, opts.Registry, opts.Store, opts.KV, opts.Logger = cat, registry.New(store, ld), store, store, logger
	if opts.ScheduleTick == 0 {
		opts.ScheduleTick = 50 * time.Millisecond
	}
	mgr := integrations.New(opts)
	cfg := api.Config{
		Catalog: cat, Auth: api.AdminToken(token), Logger: logger,
		Plugins: opts.Registry, Integrations: mgr,
	}
	if withAccess {
		acc := access.NewService(cat, redisaccess.New(rdb, redisaccess.Options{}), access.Options{AdminToken: token})
		if err := acc.Bootstrap(context.Background()); err != nil {
			t.Fatal(err)
		}
		cfg.Auth, cfg.Access = nil, acc
	}
	srv := httptest.NewServer(api.New(cfg))
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := mgr.Close(ctx); err != nil {
			t.Errorf("close manager: %v", err)
		}
		_ = ld.Close(ctx)
	})
	return &portal{t: t, rdb: rdb, url: srv.URL, cat: cat, mgr: mgr, logs: logs}
}

// response is a decoded HTTP response.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// do sends a request; body may be []byte (sent raw) or a value (sent as JSON).
func (p *portal) do(method, path string, body any, header ...string) response {
	p.t.Helper()
	var rd io.Reader
	contentType := "application/json"
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			p.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, p.url+path, rd)
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", contentType)
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: raw}
}

// must sends a request and fails the test unless the status is want.
func (p *portal) must(want int, method, path string, body any, header ...string) response {
	p.t.Helper()
	r := p.do(method, path, body, header...)
	if r.status != want {
		p.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, want, r.body)
	}
	return r
}

// publish posts a plugin package built from source as a Wasm module.
func (p *portal) publish(pkg string) response {
	p.t.Helper()
	return p.do("POST", "/api/v1/plugins", plugintest.Wasm(p.t, pkg), "Content-Type", "application/wasm")
}

// install installs the example plugin as id, pointing at the stand-in.
func (p *portal) install(id, plugin string, api *standIn, extra map[string]any) integrations.Status {
	p.t.Helper()
	spec := map[string]any{
		"plugin":       plugin,
		"config":       map[string]any{"baseUrl": api.URL, "pageSize": 7},
		"secrets":      map[string]string{"apiToken": plugintest.APIToken, "webhookSecret": plugintest.WebhookSecret},
		"auth":         []map[string]any{{"hosts": []string{api.hostPort()}, "header": "Authorization", "template": "Bearer {{apiToken}}"}},
		"allowedHosts": []string{api.hostPort()},
		"limits":       map[string]any{"memoryMiB": 64, "timeoutMs": 10000, "concurrency": 2},
	}
	for k, v := range extra {
		spec[k] = v
	}
	r := p.do("PUT", "/api/v1/integrations/"+id, spec)
	if r.status != http.StatusCreated && r.status != http.StatusOK {
		p.t.Fatalf("install %s: status %d: %s", id, r.status, r.body)
	}
	var st integrations.Status
	r.json(p.t, &st)
	return st
}

// resync starts a resync and waits for it to end.
func (p *portal) resync(id string) integrations.Sync {
	p.t.Helper()
	var s integrations.Sync
	p.must(http.StatusAccepted, "POST", "/api/v1/integrations/"+id+"/resync", nil).json(p.t, &s)
	if s.ID == "" || s.Status != integrations.SyncRunning {
		p.t.Fatalf("resync started as %+v", s)
	}
	return p.waitSync(id, s.ID)
}

func (p *portal) waitSync(id, sid string) integrations.Sync {
	p.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		var s integrations.Sync
		p.must(http.StatusOK, "GET", "/api/v1/integrations/"+id+"/syncs/"+sid, nil).json(p.t, &s)
		if s.Status != integrations.SyncRunning {
			return s
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.t.Fatalf("sync %s of %s still running", sid, id)
	return integrations.Sync{}
}

// search returns the entities whose datasource is the integration's.
func (p *portal) search(id string) map[string]*catalog.Entity {
	p.t.Helper()
	r := p.must(http.StatusOK, "POST", "/api/v1/entities/search", map[string]any{
		"query": map[string]any{"combinator": "and", "rules": []map[string]any{
			{"property": "$datasource", "operator": "=", "value": "integration:" + id}}},
		"limit": 1000,
	})
	var page struct {
		Entities []*catalog.Entity `json:"entities"`
	}
	r.json(p.t, &page)
	out := map[string]*catalog.Entity{}
	for _, e := range page.Entities {
		out[e.Identifier] = e
	}
	return out
}

// eventCount returns how many change events the catalog holds.
func (p *portal) eventCount() int {
	p.t.Helper()
	evs, err := p.cat.Events(context.Background(), "0", 1_000_000, 0)
	if err != nil {
		p.t.Fatal(err)
	}
	return len(evs)
}

// standIn is a stand-in for the example plugin's API: paged items behind a
// bearer token, item renames, a page that can be made to fail or to wait.
type standIn struct {
	*httptest.Server
	mu       sync.Mutex
	items    []map[string]any
	failAt   string        // cursor whose page answers 500
	gateAt   string        // cursor whose page waits for gate
	gate     chan struct{} // closed to release gateAt
	requests int
}

func newStandIn(t testing.TB, n int) *standIn {
	s := &standIn{}
	for i := range n {
		s.items = append(s.items, map[string]any{
			"id": fmt.Sprintf("item-%05d", i), "name": fmt.Sprintf("Item %d", i), "status": "ok", "size": i,
		})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items", s.list)
	mux.HandleFunc("PATCH /items/{id}", s.patch)
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		ok := r.Header.Get("Authorization") == "Bearer "+plugintest.APIToken
		_ = json.NewEncoder(w).Encode(map[string]bool{"authenticated": ok})
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func (s *standIn) hostPort() string {
	u, _ := url.Parse(s.URL)
	return u.Host
}

func (s *standIn) setItems(items []map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.items = items
}

// keep keeps the first n items.
func (s *standIn) keep(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.items = s.items[:n]
}

func (s *standIn) authorized(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get("Authorization") != "Bearer "+plugintest.APIToken {
		w.WriteHeader(http.StatusUnauthorized)
		return false
	}
	return true
}

func (s *standIn) list(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	cursor := r.URL.Query().Get("cursor")
	start, _ := strconv.Atoi(cursor)
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 {
		limit = 100
	}
	s.mu.Lock()
	s.requests++
	fail := s.failAt != "" && s.failAt == cursor
	var gate chan struct{}
	if s.gateAt != "" && s.gateAt == cursor {
		gate = s.gate
	}
	end := min(start+limit, len(s.items))
	page := s.items[min(start, end):end]
	body, _ := json.Marshal(map[string]any{"items": page, "next": nextCursor(end, len(s.items))})
	s.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if fail {
		http.Error(w, "upstream exploded", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func nextCursor(end, n int) string {
	if end < n {
		return strconv.Itoa(end)
	}
	return ""
}

func (s *standIn) patch(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	var in struct {
		Name string `json:"name"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, it := range s.items {
		if it["id"] == r.PathValue("id") {
			it["name"] = in.Name
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(it)
			return
		}
	}
	http.NotFound(w, r)
}

// noSecrets fails the test if a secret value appears in s.
func noSecrets(t testing.TB, where, s string) {
	t.Helper()
	for _, secret := range []string{plugintest.APIToken, plugintest.WebhookSecret} {
		if strings.Contains(s, secret) {
			t.Errorf("%s contains a secret value", where)
		}
	}
}
