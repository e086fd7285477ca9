// Package redisaccess implements access.Store on Redis with go-redis v9:
// tokens (metadata and the SHA-256 of the secret, never the secret) and
// the audit log as a Redis Stream trimmed to a retention.
//
// Under `portico dev` it runs on devredis, so it keeps devredis's rules for
// stores (the list and the reasons are in package devredis): it sends only
// commands devredis can persist (no Lua scripts, blocking pops or stream
// consumer groups; MULTI/EXEC only as TxPipelined), and the client it is
// given must carry devredis's Server.Hook. Its tests enforce the command
// rules with devredistest.Check.
package redisaccess

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/access"
	"github.com/portico-dev/portico/core/catalog"
)

// Options tune a Store.
type Options struct {
	// Prefix namespaces every key (default "portico"); keys live under
	// "<prefix>|access|".
	Prefix string
	// AuditRetention caps the audit stream, approximately (MAXLEN ~;
	// default 1,000,000 entries).
	AuditRetention int64
}

// Store is an access.Store on Redis.
//
// Key layout:
//
//	<p>|access|token|<id>           hash: "json" (metadata + hash), "lastUsedAt"
//	<p>|access|tokenhash|<sha256>   string: token id
//	<p>|access|tokens               set of token ids
//	<p>|access|user|<user>|tokens   set of the user's token ids
//	<p>|access|login|<id>|<day>     marker of a day's first use (expires)
//	<p>|access|audit                stream of audit entries (field "e": JSON)
type Store struct {
	rdb       redis.UniversalClient
	p         string
	retention int64
}

var _ access.Store = (*Store)(nil)

// New returns a Store over an open client.
func New(rdb redis.UniversalClient, opts Options) *Store {
	if opts.Prefix == "" {
		opts.Prefix = "portico"
	}
	if opts.AuditRetention <= 0 {
		opts.AuditRetention = 1_000_000
	}
	return &Store{rdb: rdb, p: opts.Prefix + "|access|", retention: opts.AuditRetention}
}

func (s *Store) tokenKey(id string) string    { return s.p + "token|" + id }
func (s *Store) hashKey(h string) string      { return s.p + "tokenhash|" + h }
func (s *Store) allKey() string               { return s.p + "tokens" }
func (s *Store) userKey(user string) string   { return s.p + "user|" + user + "|tokens" }
func (s *Store) loginKey(id, d string) string { return s.p + "login|" + id + "|" + d }
func (s *Store) auditKey() string             { return s.p + "audit" }

// record is a token as stored: the metadata plus the hash.
type record struct {
	access.Token
	Hash string `json:"hash"`
}

// PutToken stores a new token.
func (s *Store) PutToken(ctx context.Context, t *access.Token) error {
	raw, err := json.Marshal(record{Token: *t, Hash: t.Hash})
	if err != nil {
		return fmt.Errorf("encode token: %w", err)
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, s.tokenKey(t.ID), "json", raw)
		p.Set(ctx, s.hashKey(t.Hash), t.ID, 0)
		p.SAdd(ctx, s.allKey(), t.ID)
		p.SAdd(ctx, s.userKey(t.User), t.ID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("put token %s: %w", t.ID, err)
	}
	return nil
}

// Token returns a token by id.
func (s *Store) Token(ctx context.Context, id string) (*access.Token, error) {
	ts, err := s.tokens(ctx, []string{id})
	if err != nil {
		return nil, err
	}
	if len(ts) == 0 {
		return nil, fmt.Errorf("token %s: %w", id, catalog.ErrNotFound)
	}
	return ts[0], nil
}

// TokenByHash returns the token whose secret hashes to hash.
func (s *Store) TokenByHash(ctx context.Context, hash string) (*access.Token, error) {
	id, err := s.rdb.Get(ctx, s.hashKey(hash)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("token: %w", catalog.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("token by hash: %w", err)
	}
	return s.Token(ctx, id)
}

// Tokens lists a user's tokens ("" for all), oldest first.
func (s *Store) Tokens(ctx context.Context, user string) ([]*access.Token, error) {
	key := s.allKey()
	if user != "" {
		key = s.userKey(user)
	}
	ids, err := s.rdb.SMembers(ctx, key).Result()
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	ts, err := s.tokens(ctx, ids)
	if err != nil {
		return nil, err
	}
	sort.Slice(ts, func(i, j int) bool {
		if !ts[i].CreatedAt.Equal(ts[j].CreatedAt) {
			return ts[i].CreatedAt.Before(ts[j].CreatedAt)
		}
		return ts[i].ID < ts[j].ID
	})
	return ts, nil
}

func (s *Store) tokens(ctx context.Context, ids []string) ([]*access.Token, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HMGet(ctx, s.tokenKey(id), "json", "lastUsedAt")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read tokens: %w", err)
	}
	out := make([]*access.Token, 0, len(ids))
	for i, c := range cmds {
		vals := c.Val()
		raw, _ := vals[0].(string)
		if raw == "" {
			continue
		}
		var r record
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			return nil, fmt.Errorf("decode token %s: %w", ids[i], err)
		}
		t := r.Token
		t.Hash = r.Hash
		if used, _ := vals[1].(string); used != "" {
			if at, err := time.Parse(time.RFC3339, used); err == nil {
				t.LastUsedAt = &at
			}
		}
		out = append(out, &t)
	}
	return out, nil
}

// DeleteToken removes a token and its lookups.
func (s *Store) DeleteToken(ctx context.Context, t *access.Token) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.tokenKey(t.ID), s.hashKey(t.Hash))
		p.SRem(ctx, s.allKey(), t.ID)
		p.SRem(ctx, s.userKey(t.User), t.ID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete token %s: %w", t.ID, err)
	}
	return nil
}

// TouchToken records when a token was last used (only while it exists).
func (s *Store) TouchToken(ctx context.Context, id string, at time.Time) error {
	// HSETXX-like: only touch an existing token, so a revoked one stays gone.
	n, err := s.rdb.Exists(ctx, s.tokenKey(id)).Result()
	if err != nil || n == 0 {
		return err
	}
	return s.rdb.HSet(ctx, s.tokenKey(id), "lastUsedAt", at.UTC().Format(time.RFC3339)).Err()
}

// FirstUse marks the token used on day and reports whether it was the
// first time.
func (s *Store) FirstUse(ctx context.Context, id, day string) (bool, error) {
	ok, err := s.rdb.SetNX(ctx, s.loginKey(id, day), 1, 48*time.Hour).Result()
	if err != nil {
		return false, fmt.Errorf("mark token use: %w", err)
	}
	return ok, nil
}

// AppendAudit appends an entry, trimming the stream to its retention.
func (s *Store) AppendAudit(ctx context.Context, e access.AuditEntry) error {
	e.ID = ""
	raw, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode audit entry: %w", err)
	}
	err = s.rdb.XAdd(ctx, &redis.XAddArgs{
		Stream: s.auditKey(),
		MaxLen: s.retention,
		Approx: true,
		ID:     strconv.FormatInt(e.At.UnixMilli(), 10) + "-*",
		Values: []any{"e", raw},
	}).Err()
	if err != nil {
		// An entry older than the stream's last id (clock skew between
		// replicas) goes in with an automatic id.
		err = s.rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.auditKey(), MaxLen: s.retention, Approx: true, Values: []any{"e", raw}}).Err()
	}
	if err != nil {
		return fmt.Errorf("append audit entry: %w", err)
	}
	return nil
}

// AuditRange reads entries newest first.
func (s *Store) AuditRange(ctx context.Context, from, to time.Time, before string, count int) ([]access.AuditEntry, error) {
	end := "+"
	if !to.IsZero() {
		end = strconv.FormatInt(to.UnixMilli(), 10)
	}
	if before != "" {
		end = "(" + before
	}
	start := "-"
	if !from.IsZero() {
		start = strconv.FormatInt(from.UnixMilli(), 10)
	}
	msgs, err := s.rdb.XRevRangeN(ctx, s.auditKey(), end, start, int64(count)).Result()
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	out := make([]access.AuditEntry, 0, len(msgs))
	for _, m := range msgs {
		raw, _ := m.Values["e"].(string)
		var e access.AuditEntry
		if err := json.Unmarshal([]byte(raw), &e); err != nil {
			return nil, fmt.Errorf("decode audit entry %s: %w", m.ID, err)
		}
		e.ID = m.ID
		out = append(out, e)
	}
	return out, nil
}
