// Package definitions is portal-as-code's shared ground: the kinds of
// definition a document may hold, the one normalisation the CLI (to plan
// and diff) and the server (to detect drift) both use, and the ledger of
// what each named set of files applied, from which prune and drift work.
package definitions

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/portico-dev/portico/internal/errkind"
)

// Kind is the kind of a portal-as-code document.
type Kind string

// The kinds of definition, in the order apply writes them: what others
// refer to first.
const (
	Blueprint   Kind = "Blueprint"
	Workflow    Kind = "Workflow"
	Action      Kind = "Action"
	Integration Kind = "Integration"
	Scorecard   Kind = "Scorecard"
	Automation  Kind = "Automation"
	Initiative  Kind = "Initiative"
	Entity      Kind = "Entity"
	// Token comes after entities: a service account is a _user entity.
	Token Kind = "Token"
	// Dashboard is a kind of the document format this portal has no API
	// for yet: documents of it are refused.
	Dashboard Kind = "Dashboard"
)

// Kinds are the supported kinds in apply order.
var Kinds = []Kind{Blueprint, Workflow, Action, Integration, Scorecard, Automation, Initiative, Entity, Token}

// Rank is k's position in apply order (-1: not supported).
func Rank(k Kind) int {
	for i, x := range Kinds {
		if x == k {
			return i
		}
	}
	return -1
}

// ErrNotFound marks a definition that does not exist.
var ErrNotFound = errkind.New(errkind.NotFound, "not found")

// Record is what the ledger keeps of one applied definition: which set
// applied it last, whether that set created it, and the normalised spec
// it applied (with its hash).
type Record struct {
	Kind Kind   `json:"kind"`
	ID   string `json:"id"`
	Set  string `json:"set"`
	// Created says the set created the definition (only then may its
	// prune delete it).
	Created   bool           `json:"created"`
	Hash      string         `json:"hash"`
	Spec      map[string]any `json:"spec,omitempty"`
	AppliedAt time.Time      `json:"appliedAt"`
	AppliedBy string         `json:"appliedBy"`
}

// Key names a definition in the ledger.
func (r *Record) Key() string { return string(r.Kind) + "|" + r.ID }

// Hash is the hex SHA-256 of a normalised spec's JSON (object keys
// sorted, as encoding/json writes maps).
func Hash(normalised map[string]any) string {
	raw, _ := json.Marshal(normalised) // a normalised spec is plain JSON values
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// Store keeps the ledger.
type Store interface {
	// Put writes records, replacing those with the same kind and id.
	Put(ctx context.Context, recs []Record) error
	// Delete forgets definitions (absent ones are ignored).
	Delete(ctx context.Context, refs []Ref) error
	// List returns every record, ordered by kind and id.
	List(ctx context.Context) ([]Record, error)
}

// Ref names one definition.
type Ref struct {
	Kind Kind   `json:"kind"`
	ID   string `json:"id"`
}
