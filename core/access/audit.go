package access

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/portico-dev/portico/core/catalog"
)

// Audit entry kinds.
const (
	// KindRequest is one write request (any method but GET/HEAD/OPTIONS,
	// and not a read-only POST such as search), whatever its outcome.
	KindRequest = "request"
	// KindBlueprint is a write request on a blueprint: schema or
	// permission change (the catalog's blueprint events hold before/after).
	KindBlueprint = "blueprint"
	// KindTokenCreated and KindTokenRevoked are token lifecycle events.
	KindTokenCreated = "token.created"
	KindTokenRevoked = "token.revoked"
	// KindLogin is a token's first use of a (UTC) day.
	KindLogin = "login"
)

// AuditEntry is one record of the audit log. Requests using a token for a
// write carry its TokenID. Before and After hold the entity versions of a
// single-entity write.
type AuditEntry struct {
	ID         string          `json:"id"`
	At         time.Time       `json:"at"`
	Kind       string          `json:"kind"`
	Actor      string          `json:"actor"`
	TokenID    string          `json:"tokenId,omitempty"`
	Method     string          `json:"method,omitempty"`
	Route      string          `json:"route,omitempty"`
	Path       string          `json:"path,omitempty"`
	Resource   string          `json:"resource,omitempty"`
	Blueprint  string          `json:"blueprint,omitempty"`
	Identifier string          `json:"identifier,omitempty"`
	Status     int             `json:"status,omitempty"`
	RemoteIP   string          `json:"remoteIp,omitempty"`
	Detail     string          `json:"detail,omitempty"`
	Before     json.RawMessage `json:"before,omitempty"`
	After      json.RawMessage `json:"after,omitempty"`
}

// AuditQuery filters the audit log; empty fields match everything.
// Resource matches as a prefix ("entity/service/" is every service).
type AuditQuery struct {
	Actor, Resource, Blueprint, Identifier, Kind string
	From, To                                     time.Time
	Limit                                        int
}

// Audit limits.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 1000
	// auditScanCap bounds how many entries one query reads.
	auditScanCap = 200_000
)

// Record appends an audit entry (At defaults to now). Failures are logged,
// never returned: the audit log must not take requests down.
func (s *Service) Record(ctx context.Context, e AuditEntry) {
	s.record(ctx, e)
}

func (s *Service) record(ctx context.Context, e AuditEntry) {
	if e.At.IsZero() {
		e.At = s.now()
	}
	if e.Actor == "" {
		e.Actor = "anonymous"
	}
	e.capSizes()
	if err := s.store.AppendAudit(context.WithoutCancel(ctx), e); err != nil {
		s.opts.Logger.Error("append audit entry", "kind", e.Kind, "actor", e.Actor, "err", err)
	}
}

// Stored sizes of an audit entry's fields: the log keeps who did what, not
// arbitrary amounts of what a caller sent.
const (
	// MaxAuditField bounds each string field (path, resource, detail, …),
	// in bytes; longer values are cut and end with "…".
	MaxAuditField = 1024
	// MaxAuditSnapshot bounds Before and After, in bytes; a larger
	// version is stored as {"truncated": true, "bytes": <size>}.
	MaxAuditSnapshot = 64 << 10
)

// capSizes applies MaxAuditField and MaxAuditSnapshot.
func (e *AuditEntry) capSizes() {
	for _, f := range []*string{&e.Actor, &e.TokenID, &e.Method, &e.Route, &e.Path, &e.Resource, &e.Blueprint, &e.Identifier, &e.RemoteIP, &e.Detail} {
		*f = truncate(*f, MaxAuditField)
	}
	for _, raw := range []*json.RawMessage{&e.Before, &e.After} {
		if len(*raw) > MaxAuditSnapshot {
			*raw = json.RawMessage(fmt.Sprintf(`{"truncated":true,"bytes":%d}`, len(*raw)))
		}
	}
}

// truncate cuts s to at most n bytes, on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// RecordChange fills an entry's Before and After from the entity's latest
// change when the actor made it during the request (since start).
func (s *Service) RecordChange(ctx context.Context, e *AuditEntry, start time.Time) {
	if e.Blueprint == "" || e.Identifier == "" {
		return
	}
	ev, err := s.cat.LatestChange(ctx, catalog.Ref{Blueprint: e.Blueprint, Identifier: e.Identifier})
	if err != nil || ev == nil || ev.Actor != e.Actor || ev.At.Before(start.Add(-time.Second)) {
		return
	}
	e.Before, e.After = ev.Before, ev.After
}

// Audit returns matching entries, newest first (admins with the admin
// scope only).
func (s *Service) Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	if err := RequireAdmin(catalog.ActorFrom(ctx), "read the audit log"); err != nil {
		return nil, err
	}
	if q.Limit <= 0 {
		q.Limit = DefaultAuditLimit
	}
	if q.Limit > MaxAuditLimit {
		return nil, &catalog.ValidationError{Message: "invalid audit query", Violations: []catalog.Violation{{Path: "/limit", Message: fmt.Sprintf("must be between 1 and %d", MaxAuditLimit)}}}
	}
	out := []AuditEntry{}
	before := ""
	for scanned := 0; scanned < auditScanCap && len(out) < q.Limit; {
		batch, err := s.store.AuditRange(ctx, q.From, q.To, before, 1000)
		if err != nil {
			return nil, fmt.Errorf("read audit log: %w", err)
		}
		for _, e := range batch {
			if q.matches(e) {
				out = append(out, e)
				if len(out) == q.Limit {
					break
				}
			}
		}
		if len(batch) < 1000 {
			break
		}
		scanned += len(batch)
		before = batch[len(batch)-1].ID
	}
	return out, nil
}

func (q AuditQuery) matches(e AuditEntry) bool {
	return (q.Actor == "" || e.Actor == q.Actor) &&
		(q.Resource == "" || strings.HasPrefix(e.Resource, q.Resource)) &&
		(q.Blueprint == "" || e.Blueprint == q.Blueprint) &&
		(q.Identifier == "" || e.Identifier == q.Identifier) &&
		(q.Kind == "" || e.Kind == q.Kind)
}
