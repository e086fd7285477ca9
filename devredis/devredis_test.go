package devredis

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/internal/logbuf"
)

// writerEnv makes the test binary act as the writer process of TestKill9.
const writerEnv = "DEVREDIS_TEST_WRITER_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(writerEnv); dir != "" {
		os.Exit(runWriter(dir))
	}
	os.Exit(m.Run())
}

var ctx = context.Background()

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func start(t testing.TB, dir string) *Server {
	t.Helper()
	s, err := Start(dir, discardLogger())
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	return s
}

func client(t testing.TB, s *Server) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	c.AddHook(s.Hook())
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// must panics on err, failing the test with a stack trace.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// writeEverything exercises every persisted type and every rewritten command.
func writeEverything(t testing.TB, c *redis.Client) {
	t.Helper()
	inHour := time.Now().Add(time.Hour)
	steps := []func() error{
		func() error { return c.Set(ctx, "str", "hello", 0).Err() },
		func() error { return c.Set(ctx, "bin", "\x00\xff\r\n\x01 binary", 0).Err() },
		func() error { return c.Set(ctx, "ttl", "v", time.Hour).Err() },
		func() error {
			return c.SetArgs(ctx, "exat", "v", redis.SetArgs{ExpireAt: inHour.Truncate(time.Second)}).Err()
		},
		func() error {
			return c.SetArgs(ctx, "pxat", "v", redis.SetArgs{ExpireAt: inHour.Add(1500 * time.Millisecond)}).Err()
		},
		func() error { return c.Incr(ctx, "counter").Err() },
		func() error { return c.IncrBy(ctx, "counter", 41).Err() },
		func() error { return c.IncrByFloat(ctx, "float", 1.25).Err() },
		func() error { return c.MSet(ctx, "m1", "a", "m2", "b").Err() },
		func() error { return c.Set(ctx, "old", "renamed", 0).Err() },
		func() error { return c.Rename(ctx, "old", "new").Err() },
		func() error { return c.Set(ctx, "gone", "x", 0).Err() },
		func() error { return c.Del(ctx, "gone").Err() },
		func() error { return c.HSet(ctx, "hash", "a", "1", "b", "2", "c", "3").Err() },
		func() error { return c.HIncrBy(ctx, "hash", "n", 5).Err() },
		func() error { return c.HDel(ctx, "hash", "b").Err() },
		func() error { return c.ExpireAt(ctx, "hash", inHour).Err() },
		func() error { return c.SAdd(ctx, "set", "x", "y", "z").Err() },
		func() error { return c.SRem(ctx, "set", "y").Err() },
		func() error { return c.SAdd(ctx, "popped", "p1", "p2", "p3", "p4", "p5").Err() },
		func() error { return c.SPop(ctx, "popped").Err() },
		func() error { return c.SPopN(ctx, "popped", 2).Err() },
		func() error {
			return c.ZAdd(ctx, "zset", redis.Z{Score: 1.5, Member: "a"}, redis.Z{Score: -2, Member: "b"},
				redis.Z{Score: math.Inf(1), Member: "c"}, redis.Z{Score: 0.1, Member: "d"}).Err()
		},
		func() error { return c.ZIncrBy(ctx, "zset", 0.2, "d").Err() },
		func() error { return c.ZRem(ctx, "zset", "b").Err() },
		func() error { return c.RPush(ctx, "list", "1", "2", "3", "4").Err() },
		func() error { return c.LPush(ctx, "list", "0").Err() },
		func() error { return c.RPop(ctx, "list").Err() },
		func() error { return c.LTrim(ctx, "list", 0, 2).Err() },
		func() error { return c.PExpire(ctx, "list", 90*time.Minute).Err() },
		func() error {
			for i := range 5 {
				if err := c.XAdd(ctx, &redis.XAddArgs{Stream: "events", Values: []any{"n", i, "kind", "test"}}).Err(); err != nil {
					return err
				}
			}
			return nil
		},
		func() error {
			for i := range 6 {
				if err := c.XAdd(ctx, &redis.XAddArgs{Stream: "capped", MaxLen: 3, Values: []any{"n", i}}).Err(); err != nil {
					return err
				}
			}
			return nil
		},
		func() error { // trailing entry deleted: last generated ID is past the last entry
			var last string
			for i := range 3 {
				id, err := c.XAdd(ctx, &redis.XAddArgs{Stream: "trimmed", Values: []any{"n", i}}).Result()
				if err != nil {
					return err
				}
				last = id
			}
			return c.XDel(ctx, "trimmed", last).Err()
		},
		func() error { // every entry deleted: an empty stream
			id, err := c.XAdd(ctx, &redis.XAddArgs{Stream: "emptied", ID: "7-3", Values: []any{"n", 1}}).Result()
			if err != nil {
				return err
			}
			return c.XDel(ctx, "emptied", id).Err()
		},
		func() error {
			_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Incr(ctx, "tx:counter")
				p.HSet(ctx, "tx:hash", "f", "v")
				p.XAdd(ctx, &redis.XAddArgs{Stream: "events", Values: []any{"n", "tx"}})
				p.Get(ctx, "str")
				return nil
			})
			return err
		},
		func() error {
			_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
				for i := range 10 {
					p.Set(ctx, fmt.Sprintf("pipe:%d", i), i, 0)
				}
				p.Get(ctx, "pipe:3")
				return nil
			})
			return err
		},
		func() error { return c.Do(ctx, "XADD", "events", "*", "via", "do").Err() },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
}

// keyState is everything devredis persists about one key.
type keyState struct {
	Type   string
	TTL    time.Duration
	Str    string
	Hash   map[string]string
	Set    []string
	ZSet   map[string]float64
	List   []string
	Stream []miniredis.StreamEntry
	LastID string
}

func state(t testing.TB, s *Server) map[string]keyState {
	t.Helper()
	out := map[string]keyState{}
	m := s.m
	for _, k := range m.Keys() {
		st := keyState{Type: m.Type(k), TTL: m.TTL(k)}
		switch st.Type {
		case "string":
			st.Str = must(m.Get(k))
		case "hash":
			st.Hash = map[string]string{}
			for _, f := range must(m.HKeys(k)) {
				st.Hash[f] = m.HGet(k, f)
			}
		case "set":
			st.Set = must(m.Members(k))
			sort.Strings(st.Set)
		case "zset":
			st.ZSet = must(m.SortedSet(k))
		case "list":
			st.List = must(m.List(k))
		case "stream":
			st.Stream = slices.Clone(must(m.Stream(k)))
			st.LastID = must(s.lastGeneratedID(k))
		}
		out[k] = st
	}
	return out
}

// assertSameState compares two states; TTLs may differ by clock skew between
// the server computing an absolute expiry and the hook logging it.
func assertSameState(t testing.TB, want, got map[string]keyState) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("key %q missing after restart", k)
			continue
		}
		if d := w.TTL - g.TTL; d < -time.Second || d > time.Second {
			t.Errorf("key %q: TTL %v, want %v", k, g.TTL, w.TTL)
		}
		w.TTL, g.TTL = 0, 0
		if !reflect.DeepEqual(w, g) {
			t.Errorf("key %q:\n got  %+v\n want %+v", k, g, w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected key %q after restart", k)
		}
	}
}

// crashCopy copies the data dir of a running server, as a kill -9 leaves it.
func crashCopy(t testing.TB, dir string) string {
	t.Helper()
	dst := t.TempDir()
	entries := must(os.ReadDir(dir))
	for _, e := range entries {
		data := must(os.ReadFile(filepath.Join(dir, e.Name())))
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func TestRoundTripThroughClose(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir)
	writeEverything(t, client(t, s))
	want := state(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	aof, err := readAOF(filepath.Join(dir, aofName))
	if err != nil || len(aof.records) != 0 {
		t.Fatalf("AOF after Close: %v records, err %v; want empty", aof, err)
	}

	s2 := start(t, dir)
	defer s2.Close()
	assertSameState(t, want, state(t, s2))
	if got := want["hash"].TTL; got < 59*time.Minute || got > time.Hour {
		t.Errorf("hash TTL from EXPIREAT = %v, want about 1h", got)
	}
	if got := must(client(t, s2).SCard(ctx, "popped").Result()); got != 2 {
		t.Errorf("popped has %d members, want 2", got)
	}
}

func TestReplayAOFAfterCrash(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir)
	defer s.Close()
	writeEverything(t, client(t, s))
	want := state(t, s)

	time.Sleep(1500 * time.Millisecond) // let the fsync loop run
	crashed := crashCopy(t, dir)
	aof := must(readAOF(filepath.Join(crashed, aofName)))
	if len(aof.records) == 0 || aof.tailErr != nil {
		t.Fatalf("crashed AOF: %d records, tail %v", len(aof.records), aof.tailErr)
	}

	s2 := start(t, crashed)
	assertSameState(t, want, state(t, s2))
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	// The restart compacted: the AOF is empty and a second restart agrees.
	if aof := must(readAOF(filepath.Join(crashed, aofName))); len(aof.records) != 0 {
		t.Fatalf("AOF not compacted: %d records", len(aof.records))
	}
	s3 := start(t, crashed)
	defer s3.Close()
	assertSameState(t, want, state(t, s3))
}

func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir)
	defer s.Close()
	c := client(t, s)
	for _, k := range []string{"a", "b", "c"} {
		if err := c.Set(ctx, k, k, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	base := crashCopy(t, dir)
	full := must(os.ReadFile(filepath.Join(base, aofName)))
	lastRec := bytes.LastIndex(full, encodeRecord([][]string{{"set", "c", "c"}}))
	if lastRec < 0 {
		t.Fatal("last record not found in AOF")
	}

	for name, damage := range map[string]func([]byte) []byte{
		"cut mid payload":    func(b []byte) []byte { return b[:len(b)-3] },
		"cut mid header":     func(b []byte) []byte { return b[:lastRec+5] },
		"bad checksum":       func(b []byte) []byte { b = slices.Clone(b); b[len(b)-1] ^= 0xFF; return b },
		"garbage length":     func(b []byte) []byte { b = slices.Clone(b); b[lastRec+3] = 0x7F; return b },
		"zeroed tail record": func(b []byte) []byte { return append(slices.Clone(b[:lastRec]), make([]byte, 64)...) },
	} {
		t.Run(name, func(t *testing.T) {
			d := t.TempDir()
			for _, f := range []string{snapshotName, aofName} {
				data := must(os.ReadFile(filepath.Join(base, f)))
				if f == aofName {
					data = damage(data)
				}
				if err := os.WriteFile(filepath.Join(d, f), data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var logs logbuf.Buffer
			s2, err := Start(d, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			defer s2.Close()
			c2 := client(t, s2)
			for k, want := range map[string]string{"a": "a", "b": "b"} {
				if got, err := c2.Get(ctx, k).Result(); err != nil || got != want {
					t.Errorf("GET %s = %q, %v; want %q", k, got, err, want)
				}
			}
			if err := c2.Get(ctx, "c").Err(); !errors.Is(err, redis.Nil) {
				t.Errorf("GET c: err %v, want redis.Nil (torn record must not apply)", err)
			}
			if !strings.Contains(logs.String(), "torn or corrupt") {
				t.Errorf("no warning logged; logs:\n%s", logs.String())
			}
			kept, _ := filepath.Glob(filepath.Join(d, aofName+".corrupt-*"))
			if len(kept) != 1 {
				t.Errorf("damaged AOF not kept aside: %v", kept)
			}
		})
	}
}

func TestStreamIDsSurviveRestart(t *testing.T) {
	for _, graceful := range []bool{true, false} {
		t.Run(fmt.Sprintf("graceful=%v", graceful), func(t *testing.T) {
			dir := t.TempDir()
			s := start(t, dir)
			c := client(t, s)
			var ids []string
			for i := range 50 {
				ids = append(ids, must(c.XAdd(ctx, &redis.XAddArgs{Stream: "s", Values: []any{"i", i}}).Result()))
			}
			// An explicit ID far in the future, then deleted: new IDs must
			// still sort after it, as they would have before the restart.
			future := fmt.Sprintf("%d-5", time.Now().Add(time.Hour).UnixMilli())
			ids = append(ids, must(c.XAdd(ctx, &redis.XAddArgs{Stream: "s", ID: future, Values: []any{"i", "future"}}).Result()))
			if err := c.XDel(ctx, "s", future).Err(); err != nil {
				t.Fatal(err)
			}
			ids = ids[:len(ids)-1]

			if graceful {
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			} else {
				defer s.Close()
				dir = crashCopy(t, dir)
			}
			s2 := start(t, dir)
			defer s2.Close()
			c2 := client(t, s2)
			msgs := must(c2.XRange(ctx, "s", "-", "+").Result())
			var got []string
			for _, m := range msgs {
				got = append(got, m.ID)
			}
			if !slices.Equal(got, ids) {
				t.Fatalf("IDs after restart:\n got  %v\n want %v", got, ids)
			}
			next := must(c2.XAdd(ctx, &redis.XAddArgs{Stream: "s", Values: []any{"i", "next"}}).Result())
			if !streamIDLess(future, next) {
				t.Fatalf("new ID %s not after last generated %s", next, future)
			}
			// Resuming from a restored cursor sees exactly the new entry.
			after := must(c2.XRead(ctx, &redis.XReadArgs{Streams: []string{"s", ids[len(ids)-1]}}).Result())
			if len(after) != 1 || len(after[0].Messages) != 1 || after[0].Messages[0].ID != next {
				t.Fatalf("XREAD after %s = %+v, want only %s", ids[len(ids)-1], after, next)
			}
		})
	}
}

func TestFailedTransactionsAreNotLogged(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir)
	defer s.Close()
	c, other := client(t, s), client(t, s)
	if err := c.Set(ctx, "k", "0", 0).Err(); err != nil {
		t.Fatal(err)
	}

	err := c.Watch(ctx, func(tx *redis.Tx) error {
		if err := tx.Get(ctx, "k").Err(); err != nil {
			return err
		}
		if err := other.Set(ctx, "k", "other", 0).Err(); err != nil { // breaks the WATCH
			return err
		}
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "k", "from-tx", 0)
			p.Set(ctx, "side", "from-tx", 0)
			return nil
		})
		return err
	}, "k")
	if !errors.Is(err, redis.TxFailedErr) {
		t.Fatalf("Watch: %v, want TxFailedErr", err)
	}

	// A queued command the server rejects aborts the whole transaction.
	_, err = c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "aborted", "x", 0)
		p.Do(ctx, "set", "only-a-key")
		return nil
	})
	if !redis.IsExecAbortError(err) {
		t.Fatalf("TxPipelined: %v, want EXECABORT", err)
	}

	aof := must(readAOF(filepath.Join(dir, aofName)))
	var logged []string
	for _, rec := range aof.records {
		for _, cmd := range rec {
			logged = append(logged, strings.Join(cmd, " "))
		}
	}
	if want := []string{"set k 0", "set k other"}; !slices.Equal(logged, want) {
		t.Fatalf("AOF holds %q, want %q", logged, want)
	}
	for _, k := range []string{"side", "aborted"} {
		if s.m.Exists(k) {
			t.Errorf("%s was written", k)
		}
	}
}

func TestRefusedCommands(t *testing.T) {
	s := start(t, t.TempDir())
	defer s.Close()
	c := client(t, s)
	for name, cmd := range map[string]redis.Cmder{
		"eval":    c.Eval(ctx, "return redis.call('set', KEYS[1], 'x')", []string{"lua"}),
		"evalsha": c.EvalSha(ctx, "0123456789abcdef0123456789abcdef01234567", []string{"lua"}),
		"blpop":   c.BLPop(ctx, time.Second, "queue"),
		"xgroup":  c.XGroupCreateMkStream(ctx, "s", "g", "$"),
		"unknown": c.Do(ctx, "frobnicate", "x"),
		"select":  c.Do(ctx, "select", "1"),
		"multi":   c.Do(ctx, "multi"),
	} {
		if err := cmd.Err(); !errors.Is(err, ErrUnsupportedCommand) {
			t.Errorf("%s: err %v, want ErrUnsupportedCommand", name, err)
		}
	}
	_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "before-eval", "x", 0)
		p.Eval(ctx, "return 1", nil)
		return nil
	})
	if !errors.Is(err, ErrUnsupportedCommand) {
		t.Errorf("pipeline with EVAL: %v, want ErrUnsupportedCommand", err)
	}
	if len(s.m.Keys()) != 0 {
		t.Errorf("refused commands wrote keys %v", s.m.Keys())
	}

	db1 := redis.NewClient(&redis.Options{Addr: s.Addr(), DB: 1})
	db1.AddHook(s.Hook())
	defer db1.Close()
	if err := db1.Set(ctx, "k", "v", 0).Err(); !errors.Is(err, ErrUnsupportedCommand) {
		t.Errorf("client on DB 1: %v, want ErrUnsupportedCommand", err)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, "k", "v", 0).Err(); !errors.Is(err, ErrClosed) {
		t.Errorf("write after Close: %v, want ErrClosed", err)
	}
}

// TestConcurrentWriters checks that the log order matches the apply order:
// racing XADD * to one stream and SETs of one key must replay identically.
func TestConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir)
	defer s.Close()
	c := client(t, s)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 100 {
				v := fmt.Sprintf("%d-%d", g, i)
				var err error
				switch i % 4 {
				case 0:
					err = c.XAdd(ctx, &redis.XAddArgs{Stream: "shared", Values: []any{"v", v}}).Err()
				case 1:
					err = c.Set(ctx, "last", v, 0).Err()
				case 2:
					err = c.RPush(ctx, "order", v).Err()
				case 3:
					_, err = c.TxPipelined(ctx, func(p redis.Pipeliner) error {
						p.Incr(ctx, "n")
						p.XAdd(ctx, &redis.XAddArgs{Stream: "shared", Values: []any{"tx", v}})
						return nil
					})
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	want := state(t, s)
	s2 := start(t, crashCopy(t, dir))
	defer s2.Close()
	assertSameState(t, want, state(t, s2))
}

// TestInterruptedCompaction simulates a crash after a compaction renamed its
// snapshot but before it replaced the AOF: the old AOF must not be replayed
// on top of the snapshot that already contains it.
func TestInterruptedCompaction(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir)
	defer s.Close()
	c := client(t, s)
	for range 5 {
		if err := c.Incr(ctx, "n").Err(); err != nil {
			t.Fatal(err)
		}
	}
	s.mu.Lock()
	_, err := s.writeSnapshot(s.gen + 1) // step 2 of compactLocked, without step 3
	s.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	crashed := crashCopy(t, dir)
	if aof := must(readAOF(filepath.Join(crashed, aofName))); len(aof.records) != 5 {
		t.Fatalf("stale AOF has %d records, want 5", len(aof.records))
	}
	s2 := start(t, crashed)
	defer s2.Close()
	if got := must(client(t, s2).Get(ctx, "n").Int()); got != 5 {
		t.Fatalf("n = %d after restart, want 5", got)
	}
}

// TestUnknownOutcomeResnapshots checks that a write whose reply was lost
// (it may or may not have run) is captured by an immediate snapshot.
func TestUnknownOutcomeResnapshots(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir)
	defer s.Close()
	plain := s.newAdmin() // writes without logging them
	defer plain.Close()
	lostReply := s.Hook().ProcessHook(func(ctx context.Context, cmd redis.Cmder) error {
		if err := plain.Process(ctx, cmd); err != nil { // runs on the server...
			return err
		}
		cmd.SetErr(io.ErrUnexpectedEOF) // ...but the client never hears back
		return cmd.Err()
	})
	if err := lostReply(ctx, redis.NewStringCmd(ctx, "xadd", "s", "*", "f", "v")); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err %v", err)
	}
	want := state(t, s)
	s2 := start(t, crashCopy(t, dir))
	defer s2.Close()
	assertSameState(t, want, state(t, s2))
}

func TestDataDirLocked(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir)
	if _, err := Start(dir, discardLogger()); !errors.Is(err, ErrDataDirInUse) {
		t.Fatalf("second Start: %v, want ErrDataDirInUse", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	start(t, dir).Close()
}

func TestCompactionWhileRunning(t *testing.T) {
	old := compactThreshold
	compactThreshold = 4 << 10
	defer func() { compactThreshold = old }()

	dir := t.TempDir()
	s := start(t, dir)
	defer s.Close()
	c := client(t, s)
	for i := range 200 {
		if err := c.XAdd(ctx, &redis.XAddArgs{Stream: "s", Values: []any{"i", i, "pad", strings.Repeat("x", 100)}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// The background loop compacts within a second or so: wait for the
	// AOF to be emptied (a fixed wait lost the race on a loaded machine).
	for deadline := time.Now().Add(30 * time.Second); len(must(readAOF(filepath.Join(dir, aofName))).records) != 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the AOF was not compacted within 30s")
		}
	}
	if err := c.Incr(ctx, "after").Err(); err != nil {
		t.Fatal(err)
	}
	aof := must(readAOF(filepath.Join(dir, aofName)))
	if len(aof.records) != 1 {
		t.Fatalf("AOF has %d records after compaction, want 1", len(aof.records))
	}
	want := state(t, s)
	s2 := start(t, crashCopy(t, dir))
	defer s2.Close()
	assertSameState(t, want, state(t, s2))
}

// TestKill9 kills a writer process with SIGKILL and checks that a restart
// restores every acknowledged write (the requirement is all but the last
// second; writes reach the OS before they are acknowledged, so none is lost).
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), writerEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out := must(cmd.StdoutPipe())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	type ack struct {
		n  int64
		at time.Time
	}
	acks := make(chan ack, 1<<16)
	go func() {
		defer close(acks)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if n, err := strconv.ParseInt(sc.Text(), 10, 64); err == nil {
				acks <- ack{n, time.Now()}
			}
		}
	}()

	var seen []ack
	var killedAt time.Time
	deadline := time.After(60 * time.Second)
	for killedAt.IsZero() {
		select {
		case a, ok := <-acks:
			if !ok {
				t.Fatal("writer exited before it was killed")
			}
			seen = append(seen, a)
			if a.at.Sub(seen[0].at) > 2500*time.Millisecond {
				if err := cmd.Process.Kill(); err != nil { // SIGKILL
					t.Fatal(err)
				}
				killedAt = time.Now()
			}
		case <-deadline:
			_ = cmd.Process.Kill()
			t.Fatal("writer too slow")
		}
	}
	for a := range acks { // acknowledged before the kill, still in the pipe
		seen = append(seen, a)
	}
	_ = cmd.Wait()

	var durable, last int64 // printed more than 1.5 s before the kill; printed at all
	for _, a := range seen {
		if killedAt.Sub(a.at) > 1500*time.Millisecond {
			durable = max(durable, a.n)
		}
		last = max(last, a.n)
	}

	s := start(t, dir)
	defer s.Close()
	c := client(t, s)
	counter := must(c.Get(ctx, "counter").Int64())
	entries := must(c.XRange(ctx, "events", "-", "+").Result())
	t.Logf("acknowledged %d (%d more than 1.5 s before the kill), restored %d", last, durable, counter)
	if counter < durable {
		t.Fatalf("restored counter %d < %d acknowledged more than 1.5 s before the kill", counter, durable)
	}
	if counter < last {
		t.Errorf("restored counter %d < last acknowledged %d", counter, last)
	}
	if int64(len(entries)) != counter {
		t.Fatalf("stream has %d entries, counter is %d", len(entries), counter)
	}
	for i, e := range entries {
		if e.Values["n"] != strconv.Itoa(i+1) || (i > 0 && !streamIDLess(entries[i-1].ID, e.ID)) {
			t.Fatalf("entry %d = %+v (previous %s)", i, e, entries[max(i-1, 0)].ID)
		}
	}
}

// runWriter is the child process of TestKill9: it increments a counter and
// appends a matching stream entry in one transaction, forever, printing
// each acknowledged count.
func runWriter(dir string) int {
	s, err := Start(dir, discardLogger())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	c.AddHook(s.Hook())
	for i := 1; ; i++ {
		var incr *redis.IntCmd
		_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			incr = p.Incr(ctx, "counter")
			p.XAdd(ctx, &redis.XAddArgs{Stream: "events", Values: []any{"n", i}})
			return nil
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println(incr.Val())
	}
}

func TestRewrite(t *testing.T) {
	now := time.UnixMilli(1_000_000)
	done := func(c redis.Cmder, val any) redis.Cmder {
		switch c := c.(type) {
		case *redis.StringCmd:
			c.SetVal(val.(string))
		case *redis.Cmd:
			c.SetVal(val)
		}
		return c
	}
	for _, tc := range []struct {
		cmd  redis.Cmder
		want [][]string
		ok   bool
	}{
		{done(redis.NewStringCmd(ctx, "xadd", "s", "*", "f", "v"), "5-0"), [][]string{{"xadd", "s", "5-0", "f", "v"}}, true},
		{done(redis.NewStringCmd(ctx, "xadd", "s", "maxlen", "~", 10, "limit", 5, "7-*", "f", "v"), "7-1"),
			[][]string{{"xadd", "s", "maxlen", "~", "10", "limit", "5", "7-1", "f", "v"}}, true},
		{done(redis.NewStringCmd(ctx, "xadd", "s", "nomkstream", "minid", 3, "9-9", "f", "v"), "9-9"),
			[][]string{{"xadd", "s", "nomkstream", "minid", "3", "9-9", "f", "v"}}, true},
		{done(redis.NewCmd(ctx, "spop", "set", 2), []any{"a", "b"}), [][]string{{"srem", "set", "a", "b"}}, true},
		{done(redis.NewCmd(ctx, "spop", "set"), "a"), [][]string{{"srem", "set", "a"}}, true},
		{redis.NewBoolCmd(ctx, "expireat", "k", 1060), [][]string{{"pexpire", "k", "60000"}}, true},
		{redis.NewBoolCmd(ctx, "pexpireat", "k", 1_000_500, "gt"), [][]string{{"pexpire", "k", "500", "gt"}}, true},
		{redis.NewStatusCmd(ctx, "set", "k", "exat", "exat", 1010, "nx"), [][]string{{"set", "k", "exat", "px", "10000", "nx"}}, true},
		{redis.NewStatusCmd(ctx, "set", "k", "v", "pxat", 999_000), nil, false},
		{redis.NewStringCmd(ctx, "getex", "k", "pxat", 1_000_250), [][]string{{"getex", "k", "px", "250"}}, true},
		{redis.NewIntCmd(ctx, "incrbyfloat", "k", 0.1), [][]string{{"incrbyfloat", "k", "0.1"}}, true},
		{redis.NewStatusCmd(ctx, "set", "k", true, "ex", time.Duration(3)), [][]string{{"set", "k", "1", "ex", "3"}}, true},
	} {
		got, ok := rewrite(tc.cmd, now)
		if ok != tc.ok || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("rewrite(%v) = %q, %v; want %q, %v", tc.cmd.Args(), got, ok, tc.want, tc.ok)
		}
	}
}

// TestRestoreManyKeys restores a data set shaped like a catalog's (hashes,
// index strings and a long event stream) through Close's snapshot and the
// compaction at Start, and checks every key and stream entry came back.
// How long that takes at catalog size is BenchmarkSnapshotRestoreCatalog's.
func TestRestoreManyKeys(t *testing.T) {
	const hashes, strs, entries = 10_000, 10_000, 20_000
	dir := t.TempDir()
	s := start(t, dir)
	fill(t, s, hashes, strs, entries)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := start(t, dir) // load + compaction (a fresh snapshot)
	defer s2.Close()
	if n := len(s2.m.Keys()); n != hashes+strs+1 {
		t.Fatalf("%d keys restored, want %d", n, hashes+strs+1)
	}
	stream := must(s2.m.Stream("events"))
	if len(stream) != entries {
		t.Fatalf("%d stream entries restored, want %d", len(stream), entries)
	}
	if last := stream[len(stream)-1]; last.ID != fmt.Sprintf("1700000000000-%d", entries) {
		t.Errorf("last stream entry %s, want 1700000000000-%d", last.ID, entries)
	}
	h := s2.m.HGet(fmt.Sprintf("entity:service:svc-%06d", hashes-1), "json")
	if !strings.Contains(h, fmt.Sprintf(`"identifier":"svc-%06d"`, hashes-1)) {
		t.Errorf("last hash restored as %q", h)
	}
}

// BenchmarkSnapshotRestoreCatalog restores 100k hashes, 100k strings and
// 200k stream entries (a catalog-sized data set).
func BenchmarkSnapshotRestoreCatalog(b *testing.B) { benchRestore(b, 100_000, 100_000, 200_000) }

func BenchmarkSnapshotRestore100kHashes(b *testing.B) { benchRestore(b, 100_000, 0, 0) }

// benchRestore fills a server and closes it; each op is then a Start (load
// the snapshot and compact: write a fresh one) and a Close (and another).
// The snapshot size is reported.
func benchRestore(b *testing.B, hashes, strs, entries int) {
	dir := b.TempDir()
	s := start(b, dir)
	fill(b, s, hashes, strs, entries)
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		s := start(b, dir)
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
	st := must(os.Stat(filepath.Join(dir, snapshotName)))
	b.ReportMetric(float64(st.Size())/(1<<20), "snapshot-MiB")
}

// fill writes directly through miniredis (no AOF), as the Close snapshot
// captures it anyway.
func fill(t testing.TB, s *Server, hashes, strs, entries int) {
	t.Helper()
	for i := range hashes {
		s.m.HSet(fmt.Sprintf("entity:service:svc-%06d", i),
			"json", fmt.Sprintf(`{"identifier":"svc-%06d","title":"Service %d","team":"payments","properties":{"port":8080}}`, i, i),
			"blueprint", "service", "version", strconv.Itoa(i%7), "updatedAt", "2026-11-01T12:00:00Z")
	}
	for i := range strs {
		if err := s.m.Set(fmt.Sprintf("idx:%06d", i), strings.Repeat("v", 40)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range entries {
		if _, err := s.m.XAdd("events", fmt.Sprintf("1700000000000-%d", i+1),
			[]string{"type", "entity.updated", "ref", fmt.Sprintf("service/svc-%06d", i%hashes), "actor", "sync"}); err != nil {
			t.Fatal(err)
		}
	}
}
