// Package redishost keeps the plugin host's state in Redis (go-redis v9,
// real Redis or miniredis): the plugin registry with its Wasm modules,
// installations with their secrets, sync progress and locks, and plugins'
// per-installation key/value state. It is the only writer of these keys.
// Secret values are sealed with Options.Keyring (see
// internal/secretbox); values stored in plain text before stay readable.
//
// Key layout (prefix "portico|plugins" by default; "|" never appears in
// plugin names, versions or installation ids):
//
//	<p>|names                    set of plugin names
//	<p>|versions|<name>          set of versions of a plugin
//	<p>|plugin|<name>|<version>  plugin record (JSON)
//	<p>|module|<sha256>          Wasm module bytes
//	<p>|insts                    set of installation ids
//	<p>|inst|<id>                installation (JSON; secret values sealed)
//	<p>|last|<id>                id of the installation's newest sync
//	<p>|sync|<id>|<sid>          sync progress (JSON, expires)
//	<p>|lock|<id>                sync lock: owner token (expires)
//	<p>|kv|<id>                  hash of the plugin's key/value state
//
// Under `portico dev` it runs on devredis, so it keeps devredis's rules for
// stores (the list and the reasons are in package devredis): it sends only
// commands devredis can persist (no Lua scripts, blocking pops or stream
// consumer groups; MULTI/EXEC only as TxPipelined), and the client it is
// given must carry devredis's Server.Hook. Its tests enforce the command
// rules with devredistest.Check. Key TTLs do not run down under devredis,
// so there a sync lock whose holder died is not released by expiry.
package redishost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/host"
	"github.com/portico-dev/portico/host/integrations"
	"github.com/portico-dev/portico/host/registry"
	"github.com/portico-dev/portico/internal/secretbox"
)

// DefaultPrefix namespaces every key.
const DefaultPrefix = "portico|plugins"

// MaxKVKeys caps the keys of one installation's key/value state.
const MaxKVKeys = 1000

// ErrKVFull is returned when an installation's key/value state is full.
var ErrKVFull = fmt.Errorf("key/value state holds at most %d keys", MaxKVKeys)

// Store implements registry.Store, integrations.Store and host.KVStore.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	keys   *secretbox.Keyring
}

var (
	_ registry.Store     = (*Store)(nil)
	_ integrations.Store = (*Store)(nil)
	_ host.KVStore       = (*Store)(nil)
)

// Options configure a Store.
type Options struct {
	// Prefix namespaces every key (default DefaultPrefix).
	Prefix string
	// Keyring seals the secrets written and opens those read (nil: plain
	// text).
	Keyring *secretbox.Keyring
}

// New returns a Store over rdb.
func New(rdb redis.UniversalClient, opts Options) *Store {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	return &Store{rdb: rdb, prefix: opts.Prefix, keys: opts.Keyring}
}

func (s *Store) key(parts ...string) string {
	k := s.prefix
	for _, p := range parts {
		k += "|" + p
	}
	return k
}

// CreatePlugin implements registry.Store.
func (s *Store) CreatePlugin(ctx context.Context, p *registry.Plugin, module []byte) (*registry.Plugin, error) {
	if module != nil {
		// Content-addressed: writing the same bytes twice is harmless.
		if err := s.rdb.Set(ctx, s.key("module", p.SHA256), module, 0).Err(); err != nil {
			return nil, fmt.Errorf("store module: %w", err)
		}
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	created, err := s.rdb.SetNX(ctx, s.key("plugin", p.Name, p.Version), raw, 0).Result()
	if err != nil {
		return nil, fmt.Errorf("store plugin: %w", err)
	}
	if !created {
		return s.Plugin(ctx, p.Name, p.Version)
	}
	_, err = s.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.SAdd(ctx, s.key("names"), p.Name)
		pipe.SAdd(ctx, s.key("versions", p.Name), p.Version)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index plugin: %w", err)
	}
	return nil, nil
}

// Plugin implements registry.Store.
func (s *Store) Plugin(ctx context.Context, name, version string) (*registry.Plugin, error) {
	raw, err := s.rdb.Get(ctx, s.key("plugin", name, version)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("%w: %s@%s", registry.ErrNotFound, name, version)
	}
	if err != nil {
		return nil, fmt.Errorf("read plugin %s@%s: %w", name, version, err)
	}
	var p registry.Plugin
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("decode plugin %s@%s: %w", name, version, err)
	}
	return &p, nil
}

// SetPluginPath implements registry.Store.
func (s *Store) SetPluginPath(ctx context.Context, name, version, path string) error {
	key := s.key("plugin", name, version)
	for range 10 {
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			p, err := s.Plugin(ctx, name, version)
			if err != nil {
				return err
			}
			p.Path = path
			raw, err := json.Marshal(p)
			if err != nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
				pipe.Set(ctx, key, raw, 0)
				return nil
			})
			return err
		}, key)
		if !errors.Is(err, redis.TxFailedErr) {
			return err
		}
	}
	return fmt.Errorf("set path of %s@%s: too much contention", name, version)
}

// Plugins implements registry.Store.
func (s *Store) Plugins(ctx context.Context) ([]*registry.Plugin, error) {
	names, err := s.rdb.SMembers(ctx, s.key("names")).Result()
	if err != nil {
		return nil, fmt.Errorf("list plugins: %w", err)
	}
	var keys []string
	for _, name := range names {
		versions, err := s.rdb.SMembers(ctx, s.key("versions", name)).Result()
		if err != nil {
			return nil, fmt.Errorf("list versions of %s: %w", name, err)
		}
		for _, v := range versions {
			keys = append(keys, s.key("plugin", name, v))
		}
	}
	out := []*registry.Plugin{}
	if len(keys) == 0 {
		return out, nil
	}
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("read plugins: %w", err)
	}
	for i, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue
		}
		var p registry.Plugin
		if err := json.Unmarshal([]byte(str), &p); err != nil {
			return nil, fmt.Errorf("decode %s: %w", keys[i], err)
		}
		out = append(out, &p)
	}
	return out, nil
}

// Module implements registry.Store.
func (s *Store) Module(ctx context.Context, sha256 string) ([]byte, error) {
	b, err := s.rdb.Get(ctx, s.key("module", sha256)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("%w: module %s", registry.ErrNotFound, sha256)
	}
	return b, err
}

// PutInstallation implements integrations.Store.
func (s *Store) PutInstallation(ctx context.Context, inst *integrations.Installation) error {
	raw, err := s.encodeInstallation(inst)
	if err != nil {
		return err
	}
	_, err = s.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.Set(ctx, s.key("inst", inst.ID), raw, 0)
		pipe.SAdd(ctx, s.key("insts"), inst.ID)
		return nil
	})
	return err
}

// secretPlace binds a sealed secret to its installation and name.
func secretPlace(id, name string) string { return "integration/" + id + "/secret/" + name }

// encodeInstallation returns inst's stored form: its secrets sealed.
func (s *Store) encodeInstallation(inst *integrations.Installation) ([]byte, error) {
	stored := *inst
	if inst.Spec.Secrets != nil {
		stored.Spec.Secrets = make(integrations.Secrets, len(inst.Spec.Secrets))
		for name, v := range inst.Spec.Secrets {
			sealed, err := s.keys.Seal(v, secretPlace(inst.ID, name))
			if err != nil {
				return nil, fmt.Errorf("integration %s: %w", inst.ID, err)
			}
			stored.Spec.Secrets[name] = sealed
		}
	}
	return json.Marshal(&stored)
}

// Installation implements integrations.Store.
func (s *Store) Installation(ctx context.Context, id string) (*integrations.Installation, error) {
	raw, err := s.rdb.Get(ctx, s.key("inst", id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("%w: %s", integrations.ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("read integration %s: %w", id, err)
	}
	return s.decodeInstallation(raw)
}

// decodeInstallation decodes a stored installation and opens its secrets.
func (s *Store) decodeInstallation(raw []byte) (*integrations.Installation, error) {
	var inst integrations.Installation
	if err := json.Unmarshal(raw, &inst); err != nil {
		return nil, fmt.Errorf("decode integration: %w", err)
	}
	for name, v := range inst.Spec.Secrets {
		plain, err := s.keys.Open(v, secretPlace(inst.ID, name))
		if err != nil {
			return nil, fmt.Errorf("integration %s: %w", inst.ID, err)
		}
		inst.Spec.Secrets[name] = plain
	}
	return &inst, nil
}

// Installations implements integrations.Store.
func (s *Store) Installations(ctx context.Context) ([]*integrations.Installation, error) {
	ids, err := s.rdb.SMembers(ctx, s.key("insts")).Result()
	if err != nil {
		return nil, fmt.Errorf("list integrations: %w", err)
	}
	out := []*integrations.Installation{}
	if len(ids) == 0 {
		return out, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.key("inst", id)
	}
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("read integrations: %w", err)
	}
	for _, v := range vals {
		if str, ok := v.(string); ok {
			inst, err := s.decodeInstallation([]byte(str))
			if err != nil {
				return nil, err
			}
			out = append(out, inst)
		}
	}
	return out, nil
}

// SecretCensus counts the stored integration secrets by the key that
// sealed them ("" = plain text), without opening any.
func (s *Store) SecretCensus(ctx context.Context) (secretbox.Census, error) {
	c := secretbox.Census{}
	err := s.eachInstallation(ctx, func(_ string, raw []byte) error {
		var inst integrations.Installation
		if err := json.Unmarshal(raw, &inst); err != nil {
			return fmt.Errorf("decode integration: %w", err)
		}
		for _, v := range inst.Spec.Secrets {
			c.Add(v)
		}
		return nil
	})
	return c, err
}

// ResealSecrets seals again, with the primary key, every integration
// secret stored in plain text or under an older key; it returns how many
// installations it rewrote. A concurrent write of an installation wins.
func (s *Store) ResealSecrets(ctx context.Context) (int, error) {
	n := 0
	err := s.eachInstallation(ctx, func(id string, _ []byte) error {
		key := s.key("inst", id)
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			raw, err := tx.Get(ctx, key).Bytes()
			if errors.Is(err, redis.Nil) {
				return nil
			}
			if err != nil {
				return err
			}
			var stored integrations.Installation
			if err := json.Unmarshal(raw, &stored); err != nil {
				return fmt.Errorf("decode integration %s: %w", id, err)
			}
			stale := false
			for _, v := range stored.Spec.Secrets {
				stale = stale || !s.keys.Current(v)
			}
			if !stale {
				return nil
			}
			inst, err := s.decodeInstallation(raw)
			if err != nil {
				return err
			}
			fresh, err := s.encodeInstallation(inst)
			if err != nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, key, fresh, 0)
				return nil
			})
			if err == nil {
				n++
			}
			return err
		}, key)
		if errors.Is(err, redis.TxFailedErr) {
			return nil // rewritten meanwhile, sealed by that writer
		}
		return err
	})
	return n, err
}

// eachInstallation calls fn with every stored installation's raw JSON.
func (s *Store) eachInstallation(ctx context.Context, fn func(id string, raw []byte) error) error {
	ids, err := s.rdb.SMembers(ctx, s.key("insts")).Result()
	if err != nil {
		return fmt.Errorf("list integrations: %w", err)
	}
	for _, id := range ids {
		raw, err := s.rdb.Get(ctx, s.key("inst", id)).Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read integration %s: %w", id, err)
		}
		if err := fn(id, raw); err != nil {
			return err
		}
	}
	return nil
}

// DeleteInstallation implements integrations.Store.
func (s *Store) DeleteInstallation(ctx context.Context, id string) error {
	_, err := s.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.Del(ctx, s.key("inst", id), s.key("kv", id), s.key("last", id), s.key("watch", id))
		pipe.SRem(ctx, s.key("insts"), id)
		return nil
	})
	return err
}

// PutSync implements integrations.Store.
func (s *Store) PutSync(ctx context.Context, sy *integrations.Sync, ttl time.Duration) error {
	raw, err := json.Marshal(sy)
	if err != nil {
		return err
	}
	return s.rdb.Set(ctx, s.key("sync", sy.Integration, sy.ID), raw, ttl).Err()
}

// Sync implements integrations.Store.
func (s *Store) Sync(ctx context.Context, integration, id string) (*integrations.Sync, error) {
	raw, err := s.rdb.Get(ctx, s.key("sync", integration, id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("%w: sync %s of %s", integrations.ErrNotFound, id, integration)
	}
	if err != nil {
		return nil, fmt.Errorf("read sync %s: %w", id, err)
	}
	var sy integrations.Sync
	if err := json.Unmarshal(raw, &sy); err != nil {
		return nil, fmt.Errorf("decode sync %s: %w", id, err)
	}
	return &sy, nil
}

// SetLastSync implements integrations.Store.
func (s *Store) SetLastSync(ctx context.Context, integration, id string) error {
	return s.rdb.Set(ctx, s.key("last", integration), id, 0).Err()
}

// LastSync implements integrations.Store.
func (s *Store) LastSync(ctx context.Context, integration string) (string, error) {
	id, err := s.rdb.Get(ctx, s.key("last", integration)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	return id, err
}

// AcquireLock implements integrations.Store.
func (s *Store) AcquireLock(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	return s.rdb.SetNX(ctx, s.key("lock", name), owner, ttl).Result()
}

// errLockLost reports a lock that expired or was taken over.
var errLockLost = errors.New("lock lost")

// ifOwner runs write in a transaction if key still holds owner. It uses
// WATCH/MULTI rather than Lua, which the embedded dev Redis refuses. A
// transaction that lost a race (the holder refreshing while it releases)
// is tried again: the answer must say who holds the lock now.
func (s *Store) ifOwner(ctx context.Context, key, owner string, write func(redis.Pipeliner)) (bool, error) {
	for range 10 {
		held := false
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			v, err := tx.Get(ctx, key).Result()
			if errors.Is(err, redis.Nil) || err == nil && v != owner {
				return nil
			}
			if err != nil {
				return err
			}
			held = true
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error { write(p); return nil })
			return err
		}, key)
		if !errors.Is(err, redis.TxFailedErr) {
			return held, err
		}
	}
	return false, fmt.Errorf("lock %s: too much contention", key)
}

// RefreshLock implements integrations.Store.
func (s *Store) RefreshLock(ctx context.Context, name, owner string, ttl time.Duration) error {
	key := s.key("lock", name)
	held, err := s.ifOwner(ctx, key, owner, func(p redis.Pipeliner) { p.PExpire(ctx, key, ttl) })
	if err != nil {
		return err
	}
	if !held {
		return errLockLost
	}
	return nil
}

// ReleaseLock implements integrations.Store.
func (s *Store) ReleaseLock(ctx context.Context, name, owner string) error {
	key := s.key("lock", name)
	_, err := s.ifOwner(ctx, key, owner, func(p redis.Pipeliner) { p.Del(ctx, key) })
	return err
}

// PutWatchStatus implements integrations.Store.
func (s *Store) PutWatchStatus(ctx context.Context, integration string, st *integrations.WatchStatus, ttl time.Duration) error {
	raw, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode watch status: %w", err)
	}
	return s.rdb.Set(ctx, s.key("watch", integration), raw, ttl).Err()
}

// WatchStatus implements integrations.Store.
func (s *Store) WatchStatus(ctx context.Context, integration string) (*integrations.WatchStatus, error) {
	raw, err := s.rdb.Get(ctx, s.key("watch", integration)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st integrations.WatchStatus
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("decode watch status of %s: %w", integration, err)
	}
	return &st, nil
}

// Get implements host.KVStore.
func (s *Store) Get(ctx context.Context, namespace, key string) (string, bool, error) {
	v, err := s.rdb.HGet(ctx, s.key("kv", namespace), key).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return v, true, nil
}

// Set implements host.KVStore; an installation holds at most MaxKVKeys keys.
func (s *Store) Set(ctx context.Context, namespace, key, value string) error {
	k := s.key("kv", namespace)
	if value == "" {
		return s.rdb.HDel(ctx, k, key).Err()
	}
	for range 10 {
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			exists, err := tx.HExists(ctx, k, key).Result()
			if err != nil {
				return err
			}
			if !exists {
				n, err := tx.HLen(ctx, k).Result()
				if err != nil {
					return err
				}
				if n >= MaxKVKeys {
					return ErrKVFull
				}
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.HSet(ctx, k, key, value)
				return nil
			})
			return err
		}, k)
		if !errors.Is(err, redis.TxFailedErr) {
			return err
		}
	}
	return fmt.Errorf("kv set %s: too much contention", key)
}
