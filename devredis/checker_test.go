package devredis

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// ruleCases are calls a store could make, with whether devredis refuses them.
var ruleCases = []struct {
	name    string
	refused bool
	call    func(c *redis.Client) error
}{
	{"eval", true, func(c *redis.Client) error {
		return c.Eval(ctx, "return redis.call('set', KEYS[1], 'x')", []string{"lua"}).Err()
	}},
	{"evalsha", true, func(c *redis.Client) error {
		return c.EvalSha(ctx, "0123456789abcdef0123456789abcdef01234567", []string{"lua"}).Err()
	}},
	{"script load", true, func(c *redis.Client) error { return c.ScriptLoad(ctx, "return 1").Err() }},
	{"function load", true, func(c *redis.Client) error { return c.FunctionLoad(ctx, "#!lua name=x").Err() }},
	{"fcall", true, func(c *redis.Client) error { return c.FCall(ctx, "f", nil).Err() }},
	{"blpop", true, func(c *redis.Client) error { return c.BLPop(ctx, time.Second, "q").Err() }},
	{"brpop", true, func(c *redis.Client) error { return c.BRPop(ctx, time.Second, "q").Err() }},
	{"blmove", true, func(c *redis.Client) error {
		return c.BLMove(ctx, "q", "r", "LEFT", "RIGHT", time.Second).Err()
	}},
	{"bzpopmin", true, func(c *redis.Client) error { return c.BZPopMin(ctx, time.Second, "z").Err() }},
	{"xgroup", true, func(c *redis.Client) error { return c.XGroupCreateMkStream(ctx, "s", "g", "$").Err() }},
	{"xreadgroup", true, func(c *redis.Client) error {
		return c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{"s", ">"}, Block: -1}).Err()
	}},
	{"xack", true, func(c *redis.Client) error { return c.XAck(ctx, "s", "g", "1-0").Err() }},
	{"pfadd", true, func(c *redis.Client) error { return c.PFAdd(ctx, "hll", "a").Err() }},
	{"hexpire", true, func(c *redis.Client) error { return c.HExpire(ctx, "h", time.Hour, "f").Err() }},
	{"select 1", true, func(c *redis.Client) error { return c.Do(ctx, "select", "1").Err() }},
	{"copy to db 1", true, func(c *redis.Client) error { return c.Copy(ctx, "k", "k2", 1, true).Err() }},
	{"move", true, func(c *redis.Client) error { return c.Move(ctx, "k", 1).Err() }},
	{"multi alone", true, func(c *redis.Client) error { return c.Do(ctx, "multi").Err() }},
	{"unknown command", true, func(c *redis.Client) error { return c.Do(ctx, "frobnicate", "x").Err() }},
	{"eval in a transaction", true, func(c *redis.Client) error {
		_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "before-eval", "x", 0)
			p.Eval(ctx, "return 1", nil)
			return nil
		})
		return err
	}},
	{"blpop in a pipeline", true, func(c *redis.Client) error {
		_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Get(ctx, "k")
			p.BLPop(ctx, time.Second, "q")
			return nil
		})
		return err
	}},

	{"set", false, func(c *redis.Client) error { return c.Set(ctx, "k", "v", time.Hour).Err() }},
	{"xadd", false, func(c *redis.Client) error {
		return c.XAdd(ctx, &redis.XAddArgs{Stream: "s", MaxLen: 10, Approx: true, Values: []any{"f", "v"}}).Err()
	}},
	{"xread block", false, func(c *redis.Client) error {
		return c.XRead(ctx, &redis.XReadArgs{Streams: []string{"s", "0"}, Count: 1, Block: time.Millisecond}).Err()
	}},
	{"watch transaction", false, func(c *redis.Client) error {
		return c.Watch(ctx, func(tx *redis.Tx) error {
			if err := tx.Get(ctx, "k").Err(); err != nil {
				return err
			}
			_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.HSet(ctx, "h", "f", "v")
				p.SAdd(ctx, "set", "m")
				return nil
			})
			return err
		}, "k")
	}},
	{"pipeline", false, func(c *redis.Client) error {
		_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.ZAdd(ctx, "z", redis.Z{Score: 1, Member: "m"})
			p.ZRangeByScore(ctx, "z", &redis.ZRangeBy{Min: "-inf", Max: "+inf"})
			return nil
		})
		return err
	}},
	{"publish", false, func(c *redis.Client) error { return c.Publish(ctx, "ch", "m").Err() }},
	{"copy", false, func(c *redis.Client) error { return c.Copy(ctx, "k", "k2", 0, true).Err() }},
}

// TestCheckerAgreesWithHook runs each case through a client carrying
// Server.Hook and one carrying a Checker on plain miniredis: both must
// refuse exactly the calls devredis cannot persist, and the Checker must
// remember each refusal.
func TestCheckerAgreesWithHook(t *testing.T) {
	s := start(t, t.TempDir())
	defer s.Close()
	hooked := client(t, s)

	chk := &Checker{}
	checked := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	defer checked.Close()
	checked.AddHook(chk)

	var want []string
	for _, tc := range ruleCases {
		t.Run(tc.name, func(t *testing.T) {
			for name, c := range map[string]*redis.Client{"Server.Hook": hooked, "Checker": checked} {
				err := tc.call(c)
				if got := errors.Is(err, ErrUnsupportedCommand); got != tc.refused {
					t.Errorf("%s: err %v, refused %v, want %v", name, err, got, tc.refused)
				}
				if !tc.refused && err != nil && !errors.Is(err, redis.Nil) {
					t.Errorf("%s: %v", name, err)
				}
			}
		})
		if tc.refused {
			want = append(want, tc.name)
		}
	}

	err := chk.Err()
	if !errors.Is(err, ErrUnsupportedCommand) {
		t.Fatalf("Checker.Err() = %v, want ErrUnsupportedCommand", err)
	}
	if got := len(strings.Split(err.Error(), "\n")); got != len(want) {
		t.Errorf("Checker remembered %d refusals, want %d (%v):\n%v", got, len(want), want, err)
	}
	if keys := s.m.Keys(); len(keys) == 0 {
		t.Error("allowed calls wrote nothing through Server.Hook")
	}
	for _, k := range []string{"lua", "before-eval", "hll"} {
		if s.m.Exists(k) {
			t.Errorf("refused call wrote %q", k)
		}
	}
}

func TestCheckerZeroRefusals(t *testing.T) {
	chk := &Checker{}
	c := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	defer c.Close()
	c.AddHook(chk)
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := chk.Err(); err != nil {
		t.Errorf("Err() = %v after allowed commands only", err)
	}
}

// TestUnhookedClientCannotWrite checks that the server refuses writes from
// connections that did not come through Server.Hook (they would not be in
// the AOF) and from a hook of another server, and still serves their reads.
func TestUnhookedClientCannotWrite(t *testing.T) {
	s := start(t, t.TempDir())
	defer s.Close()
	if err := client(t, s).Set(ctx, "hooked", "v", 0).Err(); err != nil {
		t.Fatalf("hooked write: %v", err)
	}

	plain := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer plain.Close()
	if v, err := plain.Get(ctx, "hooked").Result(); err != nil || v != "v" {
		t.Errorf("unhooked read: %q %v", v, err)
	}
	for name, call := range map[string]func() error{
		"set":  func() error { return plain.Set(ctx, "plain", "v", 0).Err() },
		"xadd": func() error { return plain.XAdd(ctx, &redis.XAddArgs{Stream: "plain", Values: []any{"f", "v"}}).Err() },
		"eval": func() error { return plain.Eval(ctx, "return redis.call('set', 'plain', 'v')", nil).Err() },
		"transaction": func() error {
			_, err := plain.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, "plain", "v", 0)
				return nil
			})
			return err
		},
	} {
		if err := call(); err == nil || !strings.Contains(err.Error(), "only clients with Server.Hook may write") {
			t.Errorf("unhooked %s: %v, want refused", name, err)
		}
	}
	if s.m.Exists("plain") {
		t.Error("an unhooked write reached the server")
	}

	other, err := Start(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	foreign := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer foreign.Close()
	foreign.AddHook(other.Hook())
	if err := foreign.Set(ctx, "foreign", "v", 0).Err(); err == nil || !strings.Contains(err.Error(), "wrong token") {
		t.Errorf("client with another server's hook: %v, want wrong token", err)
	}
	if s.m.Exists("foreign") {
		t.Error("a write with another server's hook reached the server")
	}
}
