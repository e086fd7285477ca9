package integrations_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/portico-dev/portico/host/goplugin"
	"github.com/portico-dev/portico/host/integrations"
	"github.com/portico-dev/portico/host/internal/plugintest"
)

// installWatched installs the example plugin (ref) as id against api, whose
// /changes endpoint the plugin's watch export long-polls.
func (p *portal) installWatched(id, ref string, api *plugintest.API) {
	p.t.Helper()
	spec := map[string]any{
		"plugin":       ref,
		"config":       map[string]any{"baseUrl": api.URL, "pageSize": 7},
		"secrets":      map[string]string{"apiToken": plugintest.APIToken, "webhookSecret": plugintest.WebhookSecret},
		"auth":         []map[string]any{{"hosts": []string{api.HostPort()}, "header": "Authorization", "template": "Bearer {{apiToken}}"}},
		"allowedHosts": []string{api.HostPort()},
		"limits":       map[string]any{"timeoutMs": 10000},
	}
	if r := p.do("PUT", "/api/v1/integrations/"+id, spec); r.status != http.StatusCreated && r.status != http.StatusOK {
		p.t.Fatalf("install %s: status %d: %s", id, r.status, r.body)
	}
}

// status returns the installation's status.
func (p *portal) status(id string) integrations.Status {
	p.t.Helper()
	var st integrations.Status
	p.must(http.StatusOK, "GET", "/api/v1/integrations/"+id, nil).json(p.t, &st)
	return st
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitWatching waits until a process watches id (its first watch call
// returned: changes from now on reach the catalog).
func (p *portal) waitWatching(id string) integrations.WatchStatus {
	p.t.Helper()
	var w integrations.WatchStatus
	waitFor(p.t, id+" to be watched", func() bool {
		st := p.status(id)
		if st.Watch != nil && st.Watch.State == integrations.WatchWatching {
			w = *st.Watch
			return true
		}
		return false
	})
	return w
}

func registerNative(t *testing.T, p *portal) {
	path := plugintest.Native(t, examplePkg)
	bin, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p.must(http.StatusCreated, "POST", "/api/v1/plugins", map[string]string{"type": "goplugin", "path": path, "sha256": goplugin.Checksum(bin)})
}

// TestWatch: a plugin's watch export keeps the catalog live on both
// transports: created, updated and deleted items reach it without a
// resync, and the installation's status shows the watch.
func TestWatch(t *testing.T) {
	for _, transport := range []string{"wasm", "goplugin"} {
		t.Run(transport, func(t *testing.T) {
			p := newPortal(t, nil, integrations.Options{})
			if transport == "wasm" {
				p.publish(examplePkg)
			} else {
				registerNative(t, p)
			}
			api := plugintest.NewAPI(t, 3)
			p.installWatched("live", "example@0.1.0", api)
			go p.mgr.Run(t.Context())
			if s := p.resync("live"); s.Status != integrations.SyncSucceeded || s.Upserts != 3 {
				t.Fatalf("resync: %+v", s)
			}
			p.waitWatching("live")

			api.Emit("item.updated", map[string]any{"id": "item-001", "name": "Live", "status": "ok", "size": 1})
			api.Emit("item.created", map[string]any{"id": "item-100", "name": "New", "status": "ok", "size": 100})
			api.Emit("item.deleted", map[string]any{"id": "item-002"})
			waitFor(t, "the watched changes in the catalog", func() bool {
				es := p.search("live")
				return es["item-001"] != nil && es["item-001"].Title == "Live" && es["item-100"] != nil && es["item-002"] == nil
			})
			waitFor(t, "the watch status to count the changes", func() bool {
				w := p.status("live").Watch
				return w != nil && w.Events >= 3 && w.LastEventAt != nil
			})
		})
	}
}

// TestWatchGapResyncs: a plugin that reports it missed changes (the API's
// change log lost some after its cursor) gets a full resync, which
// reconciles what the watch did not see.
func TestWatchGapResyncs(t *testing.T) {
	p := newPortal(t, nil, integrations.Options{})
	p.publish(examplePkg)
	api := plugintest.NewAPI(t, 3)
	p.installWatched("gap", "example@0.1.0", api)
	if s := p.resync("gap"); s.Status != integrations.SyncSucceeded {
		t.Fatalf("resync: %+v", s)
	}
	go p.mgr.Run(t.Context())
	p.waitWatching("gap")
	api.Lose("item.deleted", map[string]any{"id": "item-000"})
	waitFor(t, "the resync the watch asked for", func() bool {
		st := p.status("gap")
		return st.LastSync != nil && st.LastSync.Trigger == integrations.TriggerWatch && st.LastSync.Status == integrations.SyncSucceeded
	})
	if p.search("gap")["item-000"] != nil {
		t.Fatal("the resync did not reconcile the change the watch lost")
	}
}

// TestWatchOneProcess: of two processes sharing a store, one watches an
// installation; when it stops, the other takes over once the lease ends.
//
// The lease is refreshed between watch calls: it is long enough that a
// loaded machine does not let it lapse while a runs (b would start a
// second watch), and a's stop releases it, so b takes over within a third
// of it.
func TestWatchOneProcess(t *testing.T) {
	a := newPortal(t, nil, integrations.Options{WatchLease: 10 * time.Second})
	b := newPortal(t, a.rdb, integrations.Options{WatchLease: 10 * time.Second})
	a.publish(examplePkg)
	api := plugintest.NewAPI(t, 1)
	a.installWatched("shared", "example@0.1.0", api)
	ctxA, stopA := context.WithCancel(t.Context())
	go a.mgr.Run(ctxA)
	a.waitWatching("shared")
	go b.mgr.Run(t.Context())

	// While a holds the lease, every change is applied once, by a.
	api.Emit("item.created", map[string]any{"id": "item-200", "name": "Once", "status": "ok", "size": 1})
	waitFor(t, "item-200", func() bool { return a.search("shared")["item-200"] != nil })
	if na, nb := strings.Count(a.logs.String(), "watch started"), strings.Count(b.logs.String(), "watch started"); na != 1 || nb != 0 {
		t.Fatalf("watches started: %d by a, %d by b; want 1 by a", na, nb)
	}
	// a stops: b continues from a's last position, so a change made
	// while nobody watched is not lost either.
	stopA()
	waitFor(t, "a's watch to end", func() bool { return strings.Count(a.logs.String(), "watch ended") == 1 })
	api.Emit("item.updated", map[string]any{"id": "item-200", "name": "Taken over", "status": "ok", "size": 1})
	waitFor(t, "b to take over the watch", func() bool { return strings.Count(b.logs.String(), "watch started") == 1 })
	waitFor(t, "b's watch to apply the change", func() bool {
		e := b.search("shared")["item-200"]
		return e != nil && e.Title == "Taken over"
	})
}

// TestNativeSecrets: a go-plugin integration may read its installation's
// secrets (portico_secret); a Wasm one asking the same is refused.
func TestNativeSecrets(t *testing.T) {
	for _, c := range []struct {
		transport string
		readable  bool
	}{{"wasm", false}, {"goplugin", true}} {
		t.Run(c.transport, func(t *testing.T) {
			p := newPortal(t, nil, integrations.Options{})
			if c.transport == "wasm" {
				p.publish(examplePkg)
			} else {
				registerNative(t, p)
			}
			api := plugintest.NewAPI(t, 1)
			p.installWatched("s", "example@0.1.0", api)
			var res integrations.ActResult
			p.must(http.StatusOK, "POST", "/api/v1/integrations/s/actions/secret-access", map[string]any{}).json(t, &res)
			if want := fmt.Sprintf(`{"readable":%v}`, c.readable); string(res.Outputs) != want {
				t.Fatalf("outputs %s, want %s", res.Outputs, want)
			}
		})
	}
}

// TestInstallResyncs: a new installation fills its part of the catalog
// without another call; changing it later does not resync by itself.
func TestInstallResyncs(t *testing.T) {
	p := newInstallResyncPortal(t)
	p.publish(examplePkg)
	api := plugintest.NewAPI(t, 5)
	p.installWatched("fresh", "example@0.1.0", api)
	waitFor(t, "the install's resync", func() bool {
		st := p.status("fresh")
		return st.LastSync != nil && st.LastSync.Status == integrations.SyncSucceeded
	})
	st := p.status("fresh")
	if st.LastSync.Trigger != integrations.TriggerInstall || st.Entities != 5 {
		t.Fatalf("after install: trigger %q, %d entities", st.LastSync.Trigger, st.Entities)
	}
	first := st.LastSync.ID
	p.installWatched("fresh", "example@0.1.0", api)
	if st := p.status("fresh"); st.LastSync == nil || st.LastSync.ID != first {
		t.Fatalf("an update started another resync: %+v", st.LastSync)
	}
}

// TestAuthFollowsBaseURL: a plugin's auth template naming
// pdk.AuthHostBaseURL sends the credentials to the installation's baseUrl
// (a stand-in here) with no auth override, and to nothing else.
func TestAuthFollowsBaseURL(t *testing.T) {
	p := newPortal(t, nil, integrations.Options{})
	p.publish(examplePkg)
	api := plugintest.NewAPI(t, 4)
	other := plugintest.NewAPI(t, 1)
	spec := map[string]any{
		"plugin":       "example@0.1.0",
		"config":       map[string]any{"baseUrl": api.URL},
		"secrets":      map[string]string{"apiToken": plugintest.APIToken, "webhookSecret": plugintest.WebhookSecret},
		"allowedHosts": []string{api.HostPort(), other.HostPort()},
	}
	p.must(http.StatusCreated, "PUT", "/api/v1/integrations/based", spec)
	if s := p.resync("based"); s.Status != integrations.SyncSucceeded || s.Upserts != 4 {
		t.Fatalf("resync with the token following baseUrl: %+v", s)
	}
	// The same plugin pointed elsewhere sends it there, not to the first.
	spec["config"] = map[string]any{"baseUrl": other.URL}
	p.must(http.StatusOK, "PUT", "/api/v1/integrations/based", spec)
	seen := len(api.Auths())
	if s := p.resync("based"); s.Status != integrations.SyncSucceeded {
		t.Fatalf("resync against the other API: %+v", s)
	}
	if got := other.Auths(); len(got) == 0 || got[len(got)-1] != "Bearer "+plugintest.APIToken {
		t.Fatalf("the other API got %q", got)
	}
	if len(api.Auths()) != seen {
		t.Fatal("the first API was called after the installation moved")
	}
}
