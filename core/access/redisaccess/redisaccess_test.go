package redisaccess_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/access"
	"github.com/portico-dev/portico/core/access/redisaccess"
	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/devredis/devredistest"
	"github.com/portico-dev/portico/internal/redistest"
)

// TestStore runs the store contract against miniredis and a real
// redis-server.
func TestStore(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		addr func(t *testing.T) string
	}{
		{"miniredis", func(t *testing.T) string { return miniredis.RunT(t).Addr() }},
		{"redis-server", func(t *testing.T) string { return redistest.Start(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rdb := redis.NewClient(&redis.Options{Addr: tc.addr(t)})
			t.Cleanup(func() { _ = rdb.Close() })
			devredistest.Check(t, rdb)
			prefix := "t" + randomHex(t)
			contract(t, redisaccess.New(rdb, redisaccess.Options{Prefix: prefix, AuditRetention: 50}), rdb, prefix)
		})
	}
}

func randomHex(t *testing.T) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func contract(t *testing.T, s *redisaccess.Store, rdb *redis.Client, prefix string) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	a := &access.Token{ID: "tok_a", Name: "a", User: "alice@example.com", Scopes: []string{"read"}, CreatedAt: now, ExpiresAt: now.Add(time.Hour), Hash: "ha"}
	b := &access.Token{ID: "tok_b", Name: "b", User: "bob@example.com", Scopes: []string{"write"}, CreatedAt: now.Add(time.Second), ExpiresAt: now.Add(time.Hour), Hash: "hb"}
	for _, tk := range []*access.Token{a, b} {
		if err := s.PutToken(ctx, tk); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.TokenByHash(ctx, "hb")
	if err != nil || got.ID != "tok_b" || got.Hash != "hb" || got.LastUsedAt != nil || !got.ExpiresAt.Equal(b.ExpiresAt) {
		t.Fatalf("by hash: %+v %v", got, err)
	}
	if _, err := s.TokenByHash(ctx, "nope"); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("unknown hash: %v", err)
	}
	if all, err := s.Tokens(ctx, ""); err != nil || len(all) != 2 || all[0].ID != "tok_a" {
		t.Fatalf("all tokens: %v %v", all, err)
	}
	if mine, err := s.Tokens(ctx, "alice@example.com"); err != nil || len(mine) != 1 || mine[0].ID != "tok_a" {
		t.Fatalf("alice's tokens: %v %v", mine, err)
	}
	if err := s.TouchToken(ctx, "tok_a", now); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Token(ctx, "tok_a"); got.LastUsedAt == nil || !got.LastUsedAt.Equal(now) {
		t.Fatalf("lastUsedAt: %v", got.LastUsedAt)
	}
	if err := s.DeleteToken(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchToken(ctx, "tok_a", now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Token(ctx, "tok_a"); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("revoked token still there (or resurrected by a touch): %v", err)
	}
	if _, err := s.TokenByHash(ctx, "ha"); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("revoked hash still resolves: %v", err)
	}
	for i, want := range []bool{true, false} {
		if first, err := s.FirstUse(ctx, "tok_b", "2026-11-01"); err != nil || first != want {
			t.Fatalf("FirstUse #%d = %v, %v", i, first, err)
		}
	}
	if first, _ := s.FirstUse(ctx, "tok_b", "2026-11-02"); !first {
		t.Fatal("a new day is not a first use")
	}

	// Audit: newest first, bounded by time and paged by id, trimmed.
	base := now.Add(-time.Hour)
	for i := range 200 {
		if err := s.AppendAudit(ctx, access.AuditEntry{Kind: "request", Actor: "a", Status: i, At: base.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AppendAudit(ctx, access.AuditEntry{Kind: "request", Actor: "skewed", At: base}); err != nil {
		t.Fatalf("an entry older than the last: %v", err)
	}
	n, _ := rdb.XLen(ctx, prefix+"|access|audit").Result()
	if n < 50 || n >= 201 {
		t.Fatalf("retention: %d entries", n)
	}
	page, err := s.AuditRange(ctx, time.Time{}, time.Time{}, "", 10)
	if err != nil || len(page) != 10 || page[0].Actor != "skewed" || page[1].Status != 199 || page[0].ID == "" {
		t.Fatalf("newest page: %v %v", page, err)
	}
	next, err := s.AuditRange(ctx, time.Time{}, time.Time{}, page[9].ID, 10)
	if err != nil || len(next) != 10 || next[0].Status != page[9].Status-1 {
		t.Fatalf("next page: %v %v", next, err)
	}
	window, err := s.AuditRange(ctx, base.Add(190*time.Second), base.Add(195*time.Second), "", 100)
	if err != nil || len(window) != 6 || window[0].Status != 195 || window[5].Status != 190 {
		t.Fatalf("window: %v %v", window, err)
	}
}
