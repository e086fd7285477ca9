// Package redisactions implements actions.Store on Redis with go-redis v9:
// versioned action and workflow definitions, signing secrets and run
// records with the indexes that list them. Signing secrets and webhook
// header values are sealed with Options.Keyring (see
// internal/secretbox); values stored in plain text before stay readable.
//
// Under `portico dev` it runs on devredis, so it keeps devredis's rules for
// stores (the list and the reasons are in package devredis): it sends only
// commands devredis can persist (no Lua scripts, blocking pops or stream
// consumer groups; MULTI/EXEC only as TxPipelined), and the client it is
// given must carry devredis's Server.Hook. Its tests enforce the command
// rules with devredistest.Check.
package redisactions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/internal/secretbox"
)

// Store is an actions.Store on Redis.
//
// Key layout (<p> = "portico|actions|"):
//
//	<p>action|<id>        hash: "latest" → version, "v<n>" → definition JSON
//	                      (header values sealed)
//	<p>actions            set of action ids
//	<p>workflow|<id>      hash, like actions
//	<p>workflows          set of workflow ids
//	<p>secret|<id>        string: an action's webhook signing secret (sealed)
//	<p>run|<id>           hash: "rev", "status", "json"
//	<p>runs               zset of run ids by creation time (ms)
//	<p>runs|action|<a>    zset, runs of one action
//	<p>runs|status|<s>    zset, runs in one status
//	<p>runs|entity|<b>/<e> zset, runs on one entity
//	<p>runs|requester|<u> zset, runs one user triggered (runs saved
//	                      before it existed join it on their next save)
//	<p>cursor|<name>      string: a consumer's last processed event id
//
// Channel: SaveRun publishes a run's id on <p>runs|changed each time it
// stores a newer revision (see WatchRun).
type Store struct {
	rdb     redis.UniversalClient
	p       string
	now     func() time.Time
	watches *runWatches
	keys    *secretbox.Keyring
}

var _ actions.Store = (*Store)(nil)

// Options configure a Store.
type Options struct {
	// Prefix namespaces every key (default "portico"); keys live under
	// "<prefix>|actions|".
	Prefix string
	// Keyring seals the secrets written and opens those read (nil: plain
	// text).
	Keyring *secretbox.Keyring
}

// New returns a Store over an open client.
func New(rdb redis.UniversalClient, opts Options) *Store {
	if opts.Prefix == "" {
		opts.Prefix = "portico"
	}
	p := opts.Prefix + "|actions|"
	return &Store{rdb: rdb, p: p, now: time.Now, watches: newRunWatches(rdb, p+"runs|changed"), keys: opts.Keyring}
}

// PutAction stores a new version of a unless it equals the latest.
func (s *Store) PutAction(ctx context.Context, a *actions.Action) (*actions.Action, bool, error) {
	return putDefinition(ctx, s, "action", a.Identifier, a, actionFields)
}

// GetAction returns version (0: latest) of an action.
func (s *Store) GetAction(ctx context.Context, id string, version int) (*actions.Action, error) {
	return getDefinition[actions.Action](ctx, s, "action", id, version)
}

// ListActions returns the latest version of every action, by identifier.
func (s *Store) ListActions(ctx context.Context) ([]*actions.Action, error) {
	return listDefinitions[actions.Action](ctx, s, "action")
}

// DeleteAction removes an action (every version) and its secret.
func (s *Store) DeleteAction(ctx context.Context, id string) error {
	n, err := s.rdb.Del(ctx, s.p+"action|"+id, s.p+"secret|"+id).Result()
	if err != nil {
		return fmt.Errorf("delete action %s: %w", id, err)
	}
	s.rdb.SRem(ctx, s.p+"actions", id)
	if n == 0 {
		return fmt.Errorf("action %s: %w", id, actions.ErrNotFound)
	}
	return nil
}

// PutWorkflow stores a new version of w unless it equals the latest.
func (s *Store) PutWorkflow(ctx context.Context, w *actions.Workflow) (*actions.Workflow, bool, error) {
	return putDefinition(ctx, s, "workflow", w.Identifier, w, workflowFields)
}

// GetWorkflow returns version (0: latest) of a workflow.
func (s *Store) GetWorkflow(ctx context.Context, id string, version int) (*actions.Workflow, error) {
	return getDefinition[actions.Workflow](ctx, s, "workflow", id, version)
}

// ListWorkflows returns the latest version of every workflow.
func (s *Store) ListWorkflows(ctx context.Context) ([]*actions.Workflow, error) {
	return listDefinitions[actions.Workflow](ctx, s, "workflow")
}

// versionFields points at a definition's version metadata, so one generic
// path stores actions and workflows alike.
type versionFields struct {
	version              *int
	createdAt, updatedAt *time.Time
}

func actionFields(a *actions.Action) versionFields {
	return versionFields{&a.Version, &a.CreatedAt, &a.UpdatedAt}
}

func workflowFields(w *actions.Workflow) versionFields {
	return versionFields{&w.Version, &w.CreatedAt, &w.UpdatedAt}
}

// putDefinition stores a new version of def unless it equals the latest
// (version metadata aside); it reports whether the definition is new.
func putDefinition[T any](ctx context.Context, s *Store, kind, id string, def *T, fields func(*T) versionFields) (*T, bool, error) {
	out := *def
	f := fields(&out)
	created, err := s.putVersioned(ctx, kind, id, func() ([]byte, error) { return s.encode(&out) }, func(prev []byte) (bool, error) {
		var old T
		if err := s.decode(prev, &old); err != nil {
			return false, err
		}
		of := fields(&old)
		*f.createdAt, *f.version, *f.updatedAt = *of.createdAt, *of.version, *of.updatedAt
		return reflect.DeepEqual(roundTrip(&old), roundTrip(&out)), nil
	}, func(v int, now time.Time, fresh bool) {
		*f.version, *f.updatedAt = v, now
		if fresh {
			*f.createdAt = now
		}
	})
	if err != nil {
		return nil, false, fmt.Errorf("put %s %s: %w", kind, id, err)
	}
	return &out, created, nil
}

// getDefinition returns version (0: latest) of a definition.
func getDefinition[T any](ctx context.Context, s *Store, kind, id string, version int) (*T, error) {
	var def T
	if err := s.getVersioned(ctx, kind, id, version, &def); err != nil {
		return nil, fmt.Errorf("%s %s: %w", kind, id, err)
	}
	return &def, nil
}

// listDefinitions returns the latest version of every definition of a
// kind, by identifier; one deleted meanwhile is left out.
func listDefinitions[T any](ctx context.Context, s *Store, kind string) ([]*T, error) {
	ids, err := s.rdb.SMembers(ctx, s.p+kind+"s").Result()
	if err != nil {
		return nil, fmt.Errorf("list %ss: %w", kind, err)
	}
	sort.Strings(ids)
	out := make([]*T, 0, len(ids))
	for _, id := range ids {
		def, err := getDefinition[T](ctx, s, kind, id, 0)
		if errors.Is(err, actions.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, def)
	}
	return out, nil
}

func roundTrip(v any) any {
	raw, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(raw, &out)
	return out
}

// putVersioned appends a version under an optimistic transaction.
// same reports whether the new definition equals the stored latest (it
// may copy metadata from it first); stamp sets version and times.
func (s *Store) putVersioned(ctx context.Context, kind, id string, encode func() ([]byte, error), same func(prev []byte) (bool, error), stamp func(v int, now time.Time, fresh bool)) (bool, error) {
	key := s.p + kind + "|" + id
	created := false
	for attempt := 0; attempt < 10; attempt++ {
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			latest, err := tx.HGet(ctx, key, "latest").Int()
			if err != nil && !errors.Is(err, redis.Nil) {
				return err
			}
			if latest > 0 {
				prev, err := tx.HGet(ctx, key, "v"+strconv.Itoa(latest)).Bytes()
				if err != nil {
					return err
				}
				unchanged, err := same(prev)
				if err != nil {
					return err
				}
				if unchanged {
					return nil
				}
			}
			created = latest == 0
			stamp(latest+1, s.now().UTC(), created)
			raw, err := encode()
			if err != nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.HSet(ctx, key, "latest", latest+1, "v"+strconv.Itoa(latest+1), raw)
				p.SAdd(ctx, s.p+kind+"s", id)
				return nil
			})
			return err
		}, key)
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		return created, err
	}
	return false, errors.New("too much contention")
}

func (s *Store) getVersioned(ctx context.Context, kind, id string, version int, dst any) error {
	key := s.p + kind + "|" + id
	if version <= 0 {
		v, err := s.rdb.HGet(ctx, key, "latest").Int()
		if errors.Is(err, redis.Nil) {
			return actions.ErrNotFound
		}
		if err != nil {
			return err
		}
		version = v
	}
	raw, err := s.rdb.HGet(ctx, key, "v"+strconv.Itoa(version)).Bytes()
	if errors.Is(err, redis.Nil) {
		return fmt.Errorf("version %d: %w", version, actions.ErrNotFound)
	}
	if err != nil {
		return err
	}
	return s.decode(raw, dst)
}

// InitSecret stores an action's signing secret unless it has one.
func (s *Store) InitSecret(ctx context.Context, action, secret string) (bool, error) {
	sealed, err := s.keys.Seal(secret, signingPlace(action))
	if err != nil {
		return false, fmt.Errorf("init secret of %s: %w", action, err)
	}
	ok, err := s.rdb.SetNX(ctx, s.p+"secret|"+action, sealed, 0).Result()
	if err != nil {
		return false, fmt.Errorf("init secret of %s: %w", action, err)
	}
	return ok, nil
}

// Secret returns an action's signing secret.
func (s *Store) Secret(ctx context.Context, action string) (string, error) {
	v, err := s.rdb.Get(ctx, s.p+"secret|"+action).Result()
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("secret of %s: %w", action, actions.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("secret of %s: %w", action, err)
	}
	plain, err := s.keys.Open(v, signingPlace(action))
	if err != nil {
		return "", fmt.Errorf("secret of %s: %w", action, err)
	}
	return plain, nil
}

// WebhookHeaders returns the header values of a run's webhook step.
func (s *Store) WebhookHeaders(ctx context.Context, ref actions.HeaderRef) (map[string]string, error) {
	return actions.StepHeaders(ctx, s, ref)
}

// SaveRun writes a run record unless a revision at least as new is stored,
// moving it between the status indexes (an optimistic transaction: no
// Lua, so it also works on the embedded dev Redis). A write publishes the
// run's id to the run watchers (WatchRun) in the same transaction, so a
// watcher that hears of it reads the new revision.
func (s *Store) SaveRun(ctx context.Context, r *actions.Run) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode run %s: %w", r.ID, err)
	}
	key := s.p + "run|" + r.ID
	score := float64(r.CreatedAt.UnixMilli())
	for attempt := 0; attempt < 20; attempt++ {
		err = s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			vals, err := tx.HMGet(ctx, key, "rev", "status").Result()
			if err != nil {
				return err
			}
			oldStatus, _ := vals[1].(string)
			if cur, ok := vals[0].(string); ok {
				if n, _ := strconv.Atoi(cur); n >= r.Revision {
					return nil
				}
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.HSet(ctx, key, "rev", r.Revision, "status", r.Status, "json", raw)
				if oldStatus != "" && oldStatus != r.Status {
					p.ZRem(ctx, s.p+"runs|status|"+oldStatus, r.ID)
				}
				member := redis.Z{Score: score, Member: r.ID}
				p.ZAdd(ctx, s.p+"runs|status|"+r.Status, member)
				if r.TriggeredBy != "" {
					p.ZAdd(ctx, s.p+"runs|requester|"+r.TriggeredBy, member)
				}
				if oldStatus == "" {
					p.ZAdd(ctx, s.p+"runs", member)
					p.ZAdd(ctx, s.p+"runs|action|"+r.Action, member)
					if r.Entity != "" {
						p.ZAdd(ctx, s.p+"runs|entity|"+r.Blueprint+"/"+r.Entity, member)
					}
				}
				p.Publish(ctx, s.watches.channel, r.ID)
				return nil
			})
			return err
		}, key)
		if !errors.Is(err, redis.TxFailedErr) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("save run %s: %w", r.ID, err)
	}
	return nil
}

// GetRun returns a run record.
func (s *Store) GetRun(ctx context.Context, id string) (*actions.Run, error) {
	raw, err := s.rdb.HGet(ctx, s.p+"run|"+id, "json").Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("run %s: %w", id, actions.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", id, err)
	}
	var r actions.Run
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("decode run %s: %w", id, err)
	}
	return &r, nil
}

// Cursor returns a consumer's last processed event id ("" when none).
func (s *Store) Cursor(ctx context.Context, name string) (string, error) {
	v, err := s.rdb.Get(ctx, s.p+"cursor|"+name).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("cursor %s: %w", name, err)
	}
	return v, nil
}

// SetCursor remembers a consumer's last processed event id.
func (s *Store) SetCursor(ctx context.Context, name, id string) error {
	if err := s.rdb.Set(ctx, s.p+"cursor|"+name, id, 0).Err(); err != nil {
		return fmt.Errorf("set cursor %s: %w", name, err)
	}
	return nil
}
