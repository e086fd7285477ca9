// Package devredistest holds a store's tests to devredis's rules, so a
// store that would break `portico dev` fails its own tests on miniredis or
// redis-server.
package devredistest

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/devredis"
)

// Check installs a devredis.Checker on rdb: commands devredis cannot
// persist fail with devredis.ErrUnsupportedCommand, and t fails when it
// ends if any was sent, even if the store swallowed the error.
func Check(t testing.TB, rdb redis.UniversalClient) {
	t.Helper()
	c := &devredis.Checker{}
	rdb.AddHook(c)
	t.Cleanup(func() {
		if err := c.Err(); err != nil {
			t.Errorf("the store sent commands `portico dev` refuses (see package devredis):\n%v", err)
		}
	})
}
