package redistest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// Dump renders every key and value in rdb as text, keys sorted: what an
// attacker holding a copy of the database would read (tests assert that
// no secret appears in it).
func Dump(t testing.TB, rdb redis.UniversalClient) string {
	t.Helper()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatalf("dump redis: %v", err)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		var v any
		switch typ := rdb.Type(ctx, k).Val(); typ {
		case "string":
			v = rdb.Get(ctx, k).Val()
		case "hash":
			v = rdb.HGetAll(ctx, k).Val()
		case "set":
			v = rdb.SMembers(ctx, k).Val()
		case "zset":
			v = rdb.ZRange(ctx, k, 0, -1).Val()
		case "list":
			v = rdb.LRange(ctx, k, 0, -1).Val()
		case "stream":
			v = rdb.XRange(ctx, k, "-", "+").Val()
		case "none": // expired or deleted since KEYS
			continue
		default:
			t.Fatalf("dump redis: key %s of type %s", k, typ)
		}
		fmt.Fprintf(&b, "%s\n%v\n", k, v)
	}
	return b.String()
}
