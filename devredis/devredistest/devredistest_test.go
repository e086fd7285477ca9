package devredistest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/devredis"
)

// fakeT records what Check does with its testing.TB.
type fakeT struct {
	testing.TB // nil: a call to anything else panics
	cleanups   []func()
	errs       []string
}

func (*fakeT) Helper()             {}
func (f *fakeT) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }
func (f *fakeT) Errorf(format string, args ...any) {
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}

func (f *fakeT) end() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

func TestCheck(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		call    func(c *redis.Client) error
		refused bool
	}{
		{"allowed writes", func(c *redis.Client) error {
			_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, "k", "v", 0)
				p.XAdd(ctx, &redis.XAddArgs{Stream: "s", Values: []any{"f", "v"}})
				return nil
			})
			return err
		}, false},
		{"lua script", func(c *redis.Client) error {
			return c.Eval(ctx, "return redis.call('set', 'k', 'v')", nil).Err()
		}, true},
		{"consumer group", func(c *redis.Client) error {
			return c.XGroupCreateMkStream(ctx, "s", "g", "$").Err()
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := miniredis.RunT(t)
			c := redis.NewClient(&redis.Options{Addr: m.Addr()})
			defer c.Close()
			ft := &fakeT{}
			Check(ft, c)
			err := tc.call(c) // a store may swallow this: Check must still fail the test
			if got := errors.Is(err, devredis.ErrUnsupportedCommand); got != tc.refused {
				t.Errorf("call: err %v, refused %v, want %v", err, got, tc.refused)
			}
			if tc.refused && len(m.Keys()) != 0 {
				t.Errorf("refused call reached the server: keys %v", m.Keys())
			}
			ft.end()
			if failed := len(ft.errs) > 0; failed != tc.refused {
				t.Errorf("test failed %v, want %v: %q", failed, tc.refused, ft.errs)
			}
			if tc.refused && len(ft.errs) > 0 && !strings.Contains(ft.errs[0], "portico dev") {
				t.Errorf("failure does not say why: %q", ft.errs[0])
			}
		})
	}
}
