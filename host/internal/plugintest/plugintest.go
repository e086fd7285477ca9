// Package plugintest holds fixtures for plugin host tests: building plugins
// from source once per test binary, a stand-in for the example API, and a
// script of calls that every transport must answer identically.
package plugintest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/portico-dev/portico/host"
	"github.com/portico-dev/portico/pdk"
)

var (
	mu     sync.Mutex
	dir    string
	built  = map[string]string{}
	gomod  string
	failed = map[string]error{}
)

// Main runs the tests with a build directory removed afterwards; call it from
// TestMain: os.Exit(plugintest.Main(m)).
func Main(m *testing.M) int {
	d, err := os.MkdirTemp("", "portico-plugins-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir = d
	defer os.RemoveAll(d)
	return m.Run()
}

// CacheDir is a wazero compilation cache shared by test binaries and runs
// (entries are keyed by module hash and wazero version).
func CacheDir() string { return filepath.Join(os.TempDir(), "portico-test-wazero-cache") }

// WasmPath builds pkg (an import path relative to the module root, such as
// "./plugins/example") for wasip1 once per test binary and returns its path.
func WasmPath(tb testing.TB, pkg string) string {
	return build(tb, pkg, true)
}

// Wasm is WasmPath returning the module's bytes.
func Wasm(tb testing.TB, pkg string) []byte {
	b, err := os.ReadFile(WasmPath(tb, pkg))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// Native builds pkg for the host once per test binary and returns its path.
func Native(tb testing.TB, pkg string) string {
	return build(tb, pkg, false)
}

func build(tb testing.TB, pkg string, wasm bool) string {
	tb.Helper()
	mu.Lock()
	defer mu.Unlock()
	key := fmt.Sprintf("%s wasm=%v", pkg, wasm)
	if p, ok := built[key]; ok {
		return p
	}
	if err := failed[key]; err != nil {
		tb.Fatal(err)
	}
	if dir == "" {
		tb.Fatal("plugintest: call plugintest.Main from TestMain")
	}
	root, err := moduleRoot()
	if err != nil {
		tb.Fatal(err)
	}
	out := filepath.Join(dir, fmt.Sprintf("plugin%d", len(built)))
	args := []string{"build", "-o", out}
	env := os.Environ()
	if wasm {
		out += ".wasm"
		// Without VCS stamps a module's bytes (and its compilation
		// cache key) change only when its code does, not on every
		// commit: the shared cache would otherwise grow by every plugin
		// at every commit.
		args = []string{"build", "-buildvcs=false", "-buildmode=c-shared", "-o", out}
		env = append(env, "GOOS=wasip1", "GOARCH=wasm")
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir, cmd.Env = root, env
	unlock, err := lockBuilds()
	if err != nil {
		tb.Fatal(err)
	}
	b, err := cmd.CombinedOutput()
	if err != nil {
		err = fmt.Errorf("build %s: %v\n%s", key, err, b)
	} else if wasm && raceDetector {
		err = precompile(root, CacheDir(), out)
	}
	unlock()
	if err != nil {
		failed[key] = err
		tb.Fatal(err)
	}
	built[key] = out
	return out
}

// Precompile compiles the Wasm module at path into the compilation cache
// in cacheDir with host/internal/plugintest/precompile, built without the
// race detector. WasmPath does it for CacheDir in race-detector test
// binaries, where wazero's instrumented compiler takes several times as
// long (on a cold cache the plugins' compilation dominated the host
// packages' tests).
func Precompile(tb testing.TB, cacheDir, path string) {
	tb.Helper()
	root, err := moduleRoot()
	if err == nil {
		var unlock func()
		if unlock, err = lockBuilds(); err == nil {
			err = precompile(root, cacheDir, path)
			unlock()
		}
	}
	if err != nil {
		tb.Fatal(err)
	}
}

// precompile is Precompile with the build lock held.
func precompile(root, cacheDir, module string) error {
	if dir == "" {
		return errors.New("plugintest: call plugintest.Main from TestMain")
	}
	tool := filepath.Join(dir, "precompile")
	if _, err := os.Stat(tool); err != nil {
		cmd := exec.Command("go", "test", "-c", "-o", tool, "./host/internal/plugintest/precompile")
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build precompile: %v\n%s", err, b)
		}
	}
	cmd := exec.Command(tool)
	cmd.Env = append(os.Environ(), "PORTICO_PRECOMPILE="+cacheDir+"\n"+module)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("precompile %s: %v\n%s", module, err, b)
	}
	return nil
}

func moduleRoot() (string, error) {
	if gomod != "" {
		return gomod, nil
	}
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			gomod = d
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", errors.New("plugintest: go.mod not found")
		}
		d = parent
	}
}

// Secrets of the example installation used by the tests.
const (
	APIToken      = "tok-3f9a-very-secret"
	WebhookSecret = "whsec-81c2-very-secret"
)

// API is a stand-in for the example plugin's API. Items are paged by index;
// /whoami answers whether the caller sent the right token, without echoing it.
type API struct {
	*httptest.Server
	mu    sync.Mutex
	items []map[string]any
	auths []string // Authorization headers received

	changes []change      // the change log /changes serves, oldest first
	seq     int           // sequence number of the newest change
	floor   int           // changes after floor are all in the log
	changed chan struct{} // closed and replaced on every change
}

// change is one entry of the API's change log.
type change struct {
	seq   int
	Event string         `json:"event"`
	Item  map[string]any `json:"item"`
}

// maxChanges bounds the change log; a watcher further behind gets a gap.
const maxChanges = 1000

// NewAPI starts an API serving n items.
func NewAPI(tb testing.TB, n int) *API {
	a := &API{changed: make(chan struct{})}
	for i := range n {
		a.items = append(a.items, map[string]any{
			"id": fmt.Sprintf("item-%03d", i), "name": fmt.Sprintf("Item %d", i), "status": "ok", "size": i,
		})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items", a.list)
	mux.HandleFunc("PATCH /items/{id}", a.patch)
	mux.HandleFunc("GET /changes", a.watch)
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"authenticated": a.authorized(r)})
	})
	a.Server = httptest.NewServer(mux)
	tb.Cleanup(a.Close)
	return a
}

// Auths returns the Authorization headers received so far.
func (a *API) Auths() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.auths...)
}

// HostPort returns the server's "127.0.0.1:port".
func (a *API) HostPort() string {
	u, _ := url.Parse(a.URL)
	return u.Host
}

func (a *API) authorized(r *http.Request) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.auths = append(a.auths, r.Header.Get("Authorization"))
	return r.Header.Get("Authorization") == "Bearer "+APIToken
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	if !a.authorized(r) {
		writeJSON(w, 401, map[string]string{"error": "unauthorized"})
		return
	}
	start, _ := strconv.Atoi(r.URL.Query().Get("cursor"))
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 {
		limit = 100
	}
	a.mu.Lock()
	end := min(start+limit, len(a.items))
	page := append([]map[string]any{}, a.items[min(start, end):end]...)
	a.mu.Unlock()
	next := ""
	if end < len(a.items) {
		next = strconv.Itoa(end)
	}
	writeJSON(w, 200, map[string]any{"items": page, "next": next})
}

func (a *API) patch(w http.ResponseWriter, r *http.Request) {
	if !a.authorized(r) {
		writeJSON(w, 401, map[string]string{"error": "unauthorized"})
		return
	}
	var in struct {
		Name string `json:"name"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeJSON(w, 400, map[string]string{"error": err.Error()})
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, it := range a.items {
		if it["id"] == r.PathValue("id") {
			it["name"] = in.Name
			a.logLocked("item.updated", it)
			writeJSON(w, 200, it)
			return
		}
	}
	writeJSON(w, 404, map[string]string{"error": "not found"})
}

// Emit changes the API's items as event says ("item.created",
// "item.updated" or "item.deleted", by item["id"]) and logs the change
// for watchers.
func (a *API) Emit(event string, item map[string]any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	i := slices.IndexFunc(a.items, func(it map[string]any) bool { return it["id"] == item["id"] })
	switch {
	case event == "item.deleted" && i >= 0:
		a.items = slices.Delete(a.items, i, i+1)
	case event == "item.deleted":
	case i >= 0:
		a.items[i] = item
	default:
		a.items = append(a.items, item)
	}
	a.logLocked(event, item)
}

// Lose changes the items as Emit does, but the change log loses it: a
// watcher behind it is told it has a gap (as when a watch window expires).
func (a *API) Lose(event string, item map[string]any) {
	a.Emit(event, item)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.changes, a.floor = nil, a.seq
}

func (a *API) logLocked(event string, item map[string]any) {
	a.seq++
	a.changes = append(a.changes, change{seq: a.seq, Event: event, Item: maps.Clone(item)})
	if len(a.changes) > maxChanges {
		a.floor = a.changes[len(a.changes)-maxChanges-1].seq
		a.changes = slices.Delete(a.changes, 0, len(a.changes)-maxChanges)
	}
	close(a.changed)
	a.changed = make(chan struct{})
}

// watch serves GET /changes?since=N&waitMs=M: the changes after N, as soon
// as there are some or after M ms; without since, only the position.
func (a *API) watch(w http.ResponseWriter, r *http.Request) {
	if !a.authorized(r) {
		writeJSON(w, 401, map[string]string{"error": "unauthorized"})
		return
	}
	since, err := strconv.Atoi(r.URL.Query().Get("since"))
	wait, _ := strconv.Atoi(r.URL.Query().Get("waitMs"))
	timer := time.NewTimer(time.Duration(wait) * time.Millisecond)
	defer timer.Stop()
	for {
		a.mu.Lock()
		seq, changed := a.seq, a.changed
		if err != nil { // no cursor: the position only
			a.mu.Unlock()
			writeJSON(w, 200, map[string]any{"changes": []change{}, "next": strconv.Itoa(seq)})
			return
		}
		if seq > since {
			out := []change{}
			for _, c := range a.changes {
				if c.seq > since {
					out = append(out, c)
				}
			}
			gap := since < a.floor
			a.mu.Unlock()
			writeJSON(w, 200, map[string]any{"changes": out, "next": strconv.Itoa(seq), "gap": gap})
			return
		}
		a.mu.Unlock()
		select {
		case <-changed:
		case <-timer.C:
			writeJSON(w, 200, map[string]any{"changes": []change{}, "next": strconv.Itoa(since)})
			return
		case <-r.Context().Done():
			return
		}
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header()["Date"] = nil // keep transcripts comparable
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Sandbox returns the sandbox of an example installation talking to a.
func (a *API) Sandbox() host.Sandbox {
	return host.Sandbox{
		AllowedHosts: []string{a.HostPort()},
		Secrets:      map[string]string{"apiToken": APIToken, "webhookSecret": WebhookSecret},
		Auth: []pdk.AuthTemplate{{
			Hosts: []string{a.HostPort()}, Header: "Authorization", Template: "Bearer {{apiToken}}",
		}},
	}
}

// Config returns the example installation's config for a.
func (a *API) Config() json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"baseUrl": %q, "pageSize": 7}`, a.URL))
}

// Sign returns the example webhook signature of body.
func Sign(body []byte, secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Script makes a fixed series of calls on an example integration and returns
// a transcript: results as JSON, errors as text. Two transports serving the
// same plugin must return equal transcripts.
func Script(ctx context.Context, it host.Integration, config json.RawMessage) []string {
	var out []string
	record := func(name string, v any, err error) {
		if err != nil {
			var pe *host.PluginError
			if errors.As(err, &pe) {
				out = append(out, name+" plugin error: "+pe.Message)
			} else {
				out = append(out, name+" error: "+err.Error())
			}
			return
		}
		b, _ := json.Marshal(v)
		var buf bytes.Buffer
		_ = json.Compact(&buf, b)
		out = append(out, name+" "+buf.String())
	}
	info, err := it.Info(ctx)
	record("info", info, err)

	cursor := ""
	for page := 0; page < 20; page++ {
		p, err := it.Resync(ctx, pdk.ResyncRequest{Kind: "item", Cursor: cursor, Config: config})
		record("resync", p, err)
		if err != nil || p.Cursor == "" {
			break
		}
		cursor = p.Cursor
	}
	_, err = it.Resync(ctx, pdk.ResyncRequest{Kind: "nope", Config: config})
	record("resync-unknown-kind", nil, err)

	body := []byte(`{"event": "item.updated", "item": {"id": "item-001", "name": "Renamed"}}`)
	good := pdk.WebhookRequest{Headers: map[string][]string{"X-Example-Signature": {Sign(body, WebhookSecret)}}, Body: body, Config: config}
	res, err := it.Webhook(ctx, good)
	record("webhook", res, err)
	bad := good
	bad.Headers = map[string][]string{"X-Example-Signature": {Sign(body, "wrong")}}
	res, err = it.Webhook(ctx, bad)
	record("webhook-bad-signature", res, err)

	for _, req := range []pdk.ActRequest{
		{Action: "noop"},
		{Action: "rename", Inputs: json.RawMessage(`{"name": "Shiny"}`), Entity: json.RawMessage(`{"identifier": "item-002"}`), Config: config},
		{Action: "check-connection", Config: config},
		{Action: "explode"},
		{Action: "rename", Inputs: json.RawMessage(`{"name": "Item 2"}`), Entity: json.RawMessage(`{"identifier": "item-002"}`), Config: config},
	} {
		r, err := it.Act(ctx, req)
		record("act-"+req.Action, r, err)
	}
	return out
}

// Redirector answers every request with a redirect to target.
type Redirector struct{ *httptest.Server }

// NewRedirector starts a Redirector.
func NewRedirector(tb testing.TB, target string) *Redirector {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target, http.StatusFound)
	}))
	tb.Cleanup(s.Close)
	return &Redirector{s}
}

// HostPort returns the server's "127.0.0.1:port".
func (r *Redirector) HostPort() string {
	u, _ := url.Parse(r.URL)
	return u.Host
}
