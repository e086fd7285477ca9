package redisactions_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/core/actions/redisactions"
	"github.com/portico-dev/portico/devredis"
	"github.com/portico-dev/portico/devredis/devredistest"
	"github.com/portico-dev/portico/internal/redistest"
)

// backend opens a client on one server; called twice it gives two clients
// (two processes, as serve and worker are) on the same server.
type backend struct {
	name  string
	start func(t *testing.T) (open func() *redis.Client)
}

var backends = []backend{
	{"miniredis", func(t *testing.T) func() *redis.Client {
		addr := miniredis.RunT(t).Addr()
		return func() *redis.Client { return client(t, addr, nil) }
	}},
	{"devredis", func(t *testing.T) func() *redis.Client {
		db, err := devredis.Start(t.TempDir(), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		return func() *redis.Client { return client(t, db.Addr(), db.Hook()) }
	}},
	{"redis-server", func(t *testing.T) func() *redis.Client {
		addr := redistest.Start(t)
		return func() *redis.Client { return client(t, addr, nil) }
	}},
}

func client(t *testing.T, addr string, hook redis.Hook) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr})
	if hook != nil {
		c.AddHook(hook)
	}
	t.Cleanup(func() { _ = c.Close() })
	devredistest.Check(t, c)
	return c
}

// uniquePrefix keeps tests apart on the shared redis-server.
func uniquePrefix(t *testing.T) string {
	return fmt.Sprintf("test|%s|%d", t.Name(), time.Now().UnixNano())
}

func signalled(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: no signal within 30s", what)
	}
}

func quiet(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("%s: unexpected signal", what)
	case <-time.After(150 * time.Millisecond):
	}
}

// drain consumes signals until none came for a moment.
func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		case <-time.After(150 * time.Millisecond):
			return
		}
	}
}

// numSub is how many subscribers the run channel of prefix has.
func numSub(t *testing.T, rdb *redis.Client, prefix string) int64 {
	t.Helper()
	ch := prefix + "|actions|runs|changed"
	n, err := rdb.PubSubNumSub(context.Background(), ch).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n[ch]
}

func waitNumSub(t *testing.T, rdb *redis.Client, prefix string, want int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for numSub(t, rdb, prefix) != want {
		if time.Now().After(deadline) {
			t.Fatalf("subscribers: %d, want %d", numSub(t, rdb, prefix), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSaveRunNotifiesWatchers(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			open := b.start(t)
			prefix := uniquePrefix(t)
			api := redisactions.New(open(), redisactions.Options{Prefix: prefix})    // watches
			worker := redisactions.New(open(), redisactions.Options{Prefix: prefix}) // writes
			other := redisactions.New(open(), redisactions.Options{Prefix: prefix + "-other"})

			w1, stop1, err := api.WatchRun(ctx, "run_1")
			if err != nil {
				t.Fatal(err)
			}
			defer stop1()
			w2, stop2, err := api.WatchRun(ctx, "run_1")
			if err != nil {
				t.Fatal(err)
			}
			defer stop2()
			w3, stop3, err := api.WatchRun(ctx, "run_2")
			if err != nil {
				t.Fatal(err)
			}
			defer stop3()
			if _, err := api.GetRun(ctx, "run_1"); err == nil {
				t.Fatal("run_1 exists before it was saved")
			}

			r := &actions.Run{ID: "run_1", Action: "deploy", Blueprint: "service", Status: actions.StatusInProgress, Revision: 1, CreatedAt: time.Now()}
			if err := worker.SaveRun(ctx, r); err != nil {
				t.Fatal(err)
			}
			signalled(t, w1, "first save, watcher 1")
			signalled(t, w2, "first save, watcher 2")
			if got, err := api.GetRun(ctx, "run_1"); err != nil || got.Revision != 1 {
				t.Fatalf("after the signal: %+v %v", got, err)
			}
			quiet(t, w3, "another run's watcher")

			// A revision that is not newer writes nothing and says nothing.
			if err := worker.SaveRun(ctx, r); err != nil {
				t.Fatal(err)
			}
			quiet(t, w1, "same revision")
			// Another prefix is another portal.
			if err := other.SaveRun(ctx, &actions.Run{ID: "run_1", Revision: 5, CreatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			quiet(t, w1, "other prefix")

			// Signals coalesce: three writes, at least one signal, and the
			// re-read sees the last.
			for rev := 2; rev <= 4; rev++ {
				r.Revision = rev
				r.Logs = append(r.Logs, actions.LogLine{Message: fmt.Sprint("line ", rev)})
				if err := worker.SaveRun(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			deadline := time.After(30 * time.Second)
			for rev := 0; rev != 4; {
				select {
				case <-w1:
				case <-deadline:
					t.Fatalf("revision %d after the signals, want 4", rev)
				}
				got, err := api.GetRun(ctx, "run_1")
				if err != nil {
					t.Fatal(err)
				}
				rev = got.Revision
			}

			// A stopped watch hears nothing more; the others still do.
			drain(w1)
			drain(w2)
			stop1()
			stop1() // idempotent
			r.Revision, r.Status = 5, actions.StatusSuccess
			if err := worker.SaveRun(ctx, r); err != nil {
				t.Fatal(err)
			}
			signalled(t, w2, "after another watch stopped")
			quiet(t, w1, "stopped watch")

			if err := worker.SaveRun(ctx, &actions.Run{ID: "run_2", Revision: 1, CreatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			signalled(t, w3, "run_2")
			quiet(t, w2, "run_1's watcher on run_2's save")
		})
	}
}

// One subscription serves every watch of a store, held only while some
// watch is open; a cancelled context ends its watch.
func TestWatchesShareOneSubscription(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			open := b.start(t)
			prefix := uniquePrefix(t)
			admin := open()
			s := redisactions.New(open(), redisactions.Options{Prefix: prefix})
			ctx, cancel := context.WithCancel(context.Background())
			var stops []func()
			for i := range 5 {
				_, stop, err := s.WatchRun(ctx, fmt.Sprint("run_", i%2))
				if err != nil {
					t.Fatal(err)
				}
				stops = append(stops, stop)
			}
			if n := numSub(t, admin, prefix); n != 1 {
				t.Fatalf("%d subscriptions for 5 watches", n)
			}
			for _, stop := range stops[:4] {
				stop()
			}
			if n := numSub(t, admin, prefix); n != 1 {
				t.Fatalf("%d subscriptions with one watch open", n)
			}
			cancel() // ends the last watch
			waitNumSub(t, admin, prefix, 0)

			// Watching again subscribes again.
			ch, stop, err := s.WatchRun(context.Background(), "run_9")
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			if err := s.SaveRun(context.Background(), &actions.Run{ID: "run_9", Revision: 1, CreatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			signalled(t, ch, "after re-subscribing")
		})
	}
}

// After the subscription's connection is lost, every watch is woken when
// it is re-established (notifications may have been lost meanwhile) and
// later saves are heard again.
func TestWatchSurvivesReconnect(t *testing.T) {
	open := backends[2].start(t) // redis-server: CLIENT KILL
	prefix := uniquePrefix(t)
	admin := open()
	s := redisactions.New(open(), redisactions.Options{Prefix: prefix})
	ctx := context.Background()
	ch, stop, err := s.WatchRun(ctx, "run_1")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := admin.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	signalled(t, ch, "re-subscribed")
	waitNumSub(t, admin, prefix, 1)
	if err := s.SaveRun(ctx, &actions.Run{ID: "run_1", Revision: 1, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	signalled(t, ch, "save after the reconnect")
}

func TestWatchRunFailsWithoutRedis(t *testing.T) {
	mr := miniredis.RunT(t)
	s := redisactions.New(client(t, mr.Addr(), nil), redisactions.Options{})
	mr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := s.WatchRun(ctx, "run_1"); err == nil {
		t.Fatal("watch without a server succeeded")
	}
}
