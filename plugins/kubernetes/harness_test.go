package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/klog/v2"

	"github.com/portico-dev/portico/pdk"
	"github.com/portico-dev/portico/plugins/kubernetes/standin"
)

func TestMain(m *testing.M) {
	// client-go logs every refused request and dropped watch; the tests
	// provoke both.
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	_ = fs.Set("logtostderr", "false")
	klog.SetOutput(io.Discard)
	os.Exit(m.Run())
}

// deadline bounds every wait: generous, for a loaded machine with the
// race detector on.
const deadline = 30 * time.Second

// fakeHost is the host side of a plugin call: the installation's secrets
// (portico_secret) and a catalog of service entities (portico_catalog_get).
type fakeHost struct {
	mu       sync.Mutex
	secrets  map[string]string
	services map[string]bool
	lookups  int
}

var _ pdk.SecretHost = (*fakeHost)(nil)

func (h *fakeHost) HTTP(context.Context, pdk.HTTPRequest) (*pdk.HTTPResponse, error) {
	return nil, errors.New("no HTTP in these tests")
}
func (h *fakeHost) HMAC(context.Context, pdk.HMACRequest) (*pdk.HMACResponse, error) {
	return nil, errors.New("no HMAC in these tests")
}
func (h *fakeHost) Log(context.Context, pdk.LogRequest) error { return nil }
func (h *fakeHost) KVGet(context.Context, pdk.KVGetRequest) (*pdk.KVGetResponse, error) {
	return &pdk.KVGetResponse{}, nil
}
func (h *fakeHost) KVSet(context.Context, pdk.KVSetRequest) error { return nil }

func (h *fakeHost) CatalogGet(_ context.Context, req pdk.CatalogGetRequest) (json.RawMessage, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lookups++
	if req.Blueprint == ServiceBlueprint && h.services[req.Identifier] {
		return json.RawMessage(`{"blueprint":"service","identifier":"` + req.Identifier + `"}`), nil
	}
	return json.RawMessage("null"), nil
}

func (h *fakeHost) Secret(_ context.Context, req pdk.SecretRequest) (*pdk.SecretResponse, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.secrets[req.Name]
	if !ok {
		return nil, errors.New("no secret " + req.Name)
	}
	return &pdk.SecretResponse{Value: v}, nil
}

// env is a stand-in cluster and the plugin pointed at it.
type env struct {
	srv  *standin.Server
	k    *Kubernetes
	host *fakeHost
	cfg  json.RawMessage
}

func newEnv(t testing.TB, cfg string, objs ...runtime.Object) *env {
	t.Helper()
	srv, err := standin.New(objs...)
	if err != nil {
		t.Fatal(err)
	}
	k := New()
	t.Cleanup(func() {
		k.Close()
		srv.Close()
	})
	return &env{srv: srv, k: k, cfg: json.RawMessage(cfg),
		host: &fakeHost{secrets: map[string]string{SecretKubeconfig: srv.Kubeconfig()}, services: map[string]bool{}}}
}

func fixtureEnv(t testing.TB, cfg string) *env {
	t.Helper()
	objs, err := standin.Fixtures()
	if err != nil {
		t.Fatal(err)
	}
	return newEnv(t, cfg, objs...)
}

func (e *env) ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	t.Cleanup(cancel)
	return pdk.WithHost(ctx, e.host)
}

// resyncAll pages through kind and returns its raw items.
func (e *env) resyncAll(t testing.TB, kind string) ([]json.RawMessage, int, error) {
	t.Helper()
	ctx := e.ctx(t)
	var items []json.RawMessage
	cursor, pages := "", 0
	for {
		page, err := e.k.Resync(ctx, pdk.ResyncRequest{Kind: kind, Cursor: cursor, Config: e.cfg})
		if err != nil {
			return items, pages, err
		}
		pages++
		items = append(items, page.Items...)
		if page.Cursor == "" {
			return items, pages, nil
		}
		if page.Cursor == cursor {
			t.Fatalf("resync %s: cursor %q repeated", kind, cursor)
		}
		cursor = page.Cursor
	}
}

// watchLoop plays the host's watch loop: one call at a time, each
// passing the previous cursor.
type watchLoop struct {
	e      *env
	cursor string
}

// next makes one watch call.
func (w *watchLoop) next(t testing.TB, waitMs int) (*pdk.WatchResult, error) {
	t.Helper()
	res, err := w.e.k.Watch(w.e.ctx(t), pdk.WatchRequest{Config: w.e.cfg, Cursor: w.cursor, WaitMs: waitMs})
	if err == nil {
		w.cursor = res.Cursor
	}
	return res, err
}

// start calls watch until the plugin asks for the resync that follows
// a (re)start, which it does once its informers have synced.
func (w *watchLoop) start(t testing.TB) {
	t.Helper()
	end := time.Now().Add(deadline)
	for time.Now().Before(end) {
		res, err := w.next(t, 500)
		if err != nil {
			t.Fatalf("watch: %v", err)
		}
		if res.Resync {
			return
		}
	}
	t.Fatal("the watch never asked for the resync after its start")
}

// until calls watch until found says it saw what it waits for.
func (w *watchLoop) until(t testing.TB, what string, found func(res *pdk.WatchResult) bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for time.Now().Before(end) {
		res, err := w.next(t, 500)
		if err != nil {
			t.Fatalf("watch: %v", err)
		}
		if found(res) {
			return
		}
	}
	t.Fatalf("no watch result had %s within %s", what, deadline)
}

// hasItem reports whether items hold one of kind whose JSON fields match
// want.
func hasItem(items []pdk.KindItem, kind string, want map[string]any) bool {
	for _, it := range items {
		if it.Kind == kind && matches(it.Item, want) {
			return true
		}
	}
	return false
}

func matches(raw json.RawMessage, want map[string]any) bool {
	var got map[string]any
	if json.Unmarshal(raw, &got) != nil {
		return false
	}
	for k, v := range want {
		if b1, _ := json.Marshal(got[k]); string(b1) != mustJSON(v) {
			return false
		}
	}
	return true
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func decodeItems(t testing.TB, raws []json.RawMessage) []map[string]any {
	t.Helper()
	out := make([]map[string]any, len(raws))
	for i, r := range raws {
		if err := json.Unmarshal(r, &out[i]); err != nil {
			t.Fatalf("item %d: %v", i, err)
		}
	}
	return out
}
