package access

import (
	"context"
	"time"
)

// Store persists tokens and the audit log; redisaccess implements it.
// Missing tokens are catalog.ErrNotFound.
type Store interface {
	// PutToken stores a new token (with its Hash).
	PutToken(ctx context.Context, t *Token) error
	// Token returns a token by id.
	Token(ctx context.Context, id string) (*Token, error)
	// TokenByHash returns the token whose secret hashes to hash.
	TokenByHash(ctx context.Context, hash string) (*Token, error)
	// Tokens lists a user's tokens ("" for every user), oldest first.
	Tokens(ctx context.Context, user string) ([]*Token, error)
	// DeleteToken removes a token.
	DeleteToken(ctx context.Context, t *Token) error
	// TouchToken records when a token was last used.
	TouchToken(ctx context.Context, id string, at time.Time) error
	// FirstUse reports whether this is the token's first use on day
	// (YYYY-MM-DD), across every process.
	FirstUse(ctx context.Context, id, day string) (bool, error)

	// AppendAudit appends an entry to the audit log, trimming it to its
	// retention.
	AppendAudit(ctx context.Context, e AuditEntry) error
	// AuditRange returns up to count entries newest first, at or before
	// `before` (a stream id from a previous call, exclusive; "" for the
	// newest) and not older than from (zero: no bound); to bounds the
	// newest (zero: none).
	AuditRange(ctx context.Context, from, to time.Time, before string, count int) ([]AuditEntry, error)
}
