package redishost_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/devredis"
	"github.com/portico-dev/portico/devredis/devredistest"
	"github.com/portico-dev/portico/host/integrations"
	"github.com/portico-dev/portico/host/redishost"
	"github.com/portico-dev/portico/host/registry"
	"github.com/portico-dev/portico/internal/redistest"
)

// backends are the Redis flavours the store must work on.
var backends = []struct {
	name string
	open func(t *testing.T) redis.UniversalClient
}{
	{"miniredis", func(t *testing.T) redis.UniversalClient {
		return redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	}},
	{"devredis", func(t *testing.T) redis.UniversalClient {
		db, err := devredis.Start(t.TempDir(), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		c := redis.NewClient(&redis.Options{Addr: db.Addr()})
		c.AddHook(db.Hook())
		return c
	}},
	{"redis-server", func(t *testing.T) redis.UniversalClient {
		return redis.NewClient(&redis.Options{Addr: redistest.Start(t)})
	}},
}

func TestStore(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			rdb := b.open(t)
			t.Cleanup(func() { rdb.Close() })
			devredistest.Check(t, rdb)
			// A prefix of its own: the real server is shared.
			s := redishost.New(rdb, redishost.Options{Prefix: fmt.Sprintf("test|%s|%d", t.Name(), time.Now().UnixNano())})
			t.Run("plugins", func(t *testing.T) { testPlugins(t, s) })
			t.Run("locks", func(t *testing.T) { testLocks(t, s) })
			t.Run("kv", func(t *testing.T) { testKV(t, s) })
			t.Run("installations", func(t *testing.T) { testInstallations(t, s) })
		})
	}
}

func testPlugins(t *testing.T, s *redishost.Store) {
	ctx := context.Background()
	p := &registry.Plugin{Name: "x", Version: "1.0.0", Type: registry.TypeWasm, SHA256: "aa"}
	if existing, err := s.CreatePlugin(ctx, p, []byte("\x00asm-1")); err != nil || existing != nil {
		t.Fatalf("create: %v %v", existing, err)
	}
	other := *p
	other.SHA256 = "bb"
	existing, err := s.CreatePlugin(ctx, &other, []byte("\x00asm-2"))
	if err != nil || existing == nil || existing.SHA256 != "aa" {
		t.Fatalf("create again: %+v %v", existing, err)
	}
	if m, err := s.Module(ctx, "aa"); err != nil || string(m) != "\x00asm-1" {
		t.Fatalf("module: %q %v", m, err)
	}
	if _, err := s.Plugin(ctx, "x", "2.0.0"); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("missing version: %v", err)
	}
	if all, err := s.Plugins(ctx); err != nil || len(all) != 1 {
		t.Fatalf("plugins: %v %v", all, err)
	}
}

func testLocks(t *testing.T, s *redishost.Store) {
	ctx := context.Background()
	steps := []struct {
		name string
		do   func() error
		want error
	}{
		{"acquire", func() error { return acquire(s, "a", "one", true) }, nil},
		{"held", func() error { return acquire(s, "a", "two", false) }, nil},
		{"refresh by owner", func() error { return s.RefreshLock(ctx, "a", "one", time.Minute) }, nil},
		{"refresh by other", func() error { return s.RefreshLock(ctx, "a", "two", time.Minute) }, errors.New("lock lost")},
		{"release by other is a no-op", func() error { return s.ReleaseLock(ctx, "a", "two") }, nil},
		{"still held", func() error { return acquire(s, "a", "two", false) }, nil},
		{"release by owner", func() error { return s.ReleaseLock(ctx, "a", "one") }, nil},
		{"free again", func() error { return acquire(s, "a", "two", true) }, nil},
	}
	for _, st := range steps {
		err := st.do()
		if (err == nil) != (st.want == nil) || err != nil && err.Error() != st.want.Error() {
			t.Fatalf("%s: err = %v, want %v", st.name, err, st.want)
		}
	}
}

func acquire(s *redishost.Store, id, owner string, want bool) error {
	ok, err := s.AcquireLock(context.Background(), id, owner, time.Minute)
	if err != nil {
		return err
	}
	if ok != want {
		return fmt.Errorf("acquired = %v, want %v", ok, want)
	}
	return nil
}

func testKV(t *testing.T, s *redishost.Store) {
	ctx := context.Background()
	for i := range redishost.MaxKVKeys {
		if err := s.Set(ctx, "inst", fmt.Sprintf("k%d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Set(ctx, "inst", "one-too-many", "v"); !errors.Is(err, redishost.ErrKVFull) {
		t.Fatalf("over the cap: %v", err)
	}
	if err := s.Set(ctx, "inst", "k1", "changed"); err != nil {
		t.Fatalf("overwrite at the cap: %v", err)
	}
	if v, ok, err := s.Get(ctx, "inst", "k1"); err != nil || !ok || v != "changed" {
		t.Fatalf("get: %q %v %v", v, ok, err)
	}
	if err := s.Set(ctx, "inst", "k1", ""); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Get(ctx, "inst", "k1"); err != nil || ok {
		t.Fatalf("deleted key: %v %v", ok, err)
	}
	if _, ok, _ := s.Get(ctx, "other", "k2"); ok {
		t.Fatal("namespaces leak")
	}
}

func testInstallations(t *testing.T, s *redishost.Store) {
	ctx := context.Background()
	inst := &integrations.Installation{ID: "i1", Plugin: "x@1.0.0", Spec: integrations.Spec{Secrets: integrations.Secrets{"k": "v"}}}
	if err := s.PutInstallation(ctx, inst); err != nil {
		t.Fatal(err)
	}
	got, err := s.Installation(ctx, "i1")
	if err != nil || got.Spec.Secrets["k"] != "v" {
		t.Fatalf("installation: %+v %v", got, err)
	}
	sy := &integrations.Sync{ID: "s1", Integration: "i1", Status: integrations.SyncRunning}
	if err := s.PutSync(ctx, sy, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.SetLastSync(ctx, "i1", "s1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "i1", "cursor", "c"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteInstallation(ctx, "i1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Installation(ctx, "i1"); !errors.Is(err, integrations.ErrNotFound) {
		t.Fatalf("deleted installation: %v", err)
	}
	if last, _ := s.LastSync(ctx, "i1"); last != "" {
		t.Fatalf("last sync survived: %q", last)
	}
	if _, ok, _ := s.Get(ctx, "i1", "cursor"); ok {
		t.Fatal("kv state survived")
	}
	if all, err := s.Installations(ctx); err != nil || len(all) != 0 {
		t.Fatalf("installations: %v %v", all, err)
	}
}
