package redisdefinitions_test

import (
	"context"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/definitions"
	"github.com/portico-dev/portico/core/definitions/redisdefinitions"
	"github.com/portico-dev/portico/devredis/devredistest"
)

// TestLedger: records are replaced by kind and id, listed in apply order
// then by id, and forgotten on delete (absent ones ignored).
func TestLedger(t *testing.T) {
	ctx := context.Background()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	devredistest.Check(t, rdb)
	s := redisdefinitions.New(rdb, redisdefinitions.Options{})

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Put(ctx, []definitions.Record{
		{Kind: definitions.Entity, ID: "service/a", Set: "x", Hash: "1"},
		{Kind: definitions.Blueprint, ID: "service", Set: "x", Hash: "2", Created: true},
		{Kind: definitions.Action, ID: "deploy", Set: "x", Hash: "3"},
	}))
	must(s.Put(ctx, []definitions.Record{{Kind: definitions.Action, ID: "deploy", Set: "y", Hash: "4"}}))
	must(s.Delete(ctx, []definitions.Ref{{Kind: definitions.Entity, ID: "service/a"}, {Kind: definitions.Entity, ID: "absent"}}))
	got, err := s.List(ctx)
	must(err)
	want := []struct {
		kind          definitions.Kind
		id, set, hash string
		created       bool
	}{
		{definitions.Blueprint, "service", "x", "2", true},
		{definitions.Action, "deploy", "y", "4", false},
	}
	if len(got) != len(want) {
		t.Fatalf("ledger = %+v, want %d records", got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Kind != w.kind || g.ID != w.id || g.Set != w.set || g.Hash != w.hash || g.Created != w.created {
			t.Errorf("record %d = %+v, want %+v", i, g, w)
		}
	}
}
