package redisactions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/internal/secretbox"
)

// signingPlace binds a sealed signing secret to its action.
func signingPlace(action string) string { return "action/" + action + "/signing-secret" }

// eachHeaders calls fn with every header map of a definition (an
// *actions.Action or *actions.Workflow) and the place its values are
// bound to, less the header name.
func eachHeaders(def any, fn func(place string, h map[string]string) error) error {
	switch d := def.(type) {
	case *actions.Action:
		return fn("action/"+d.Identifier+"/header/", d.Invocation.Headers)
	case *actions.Workflow:
		var err error
		d.Walk(func(st *actions.Step) {
			if err == nil {
				err = fn("workflow/"+d.Identifier+"/step/"+st.ID+"/header/", st.Headers)
			}
		})
		return err
	}
	return nil
}

// encode returns a definition's stored form: header values sealed (the
// definition itself is left as it is).
func (s *Store) encode(def any) ([]byte, error) {
	raw, err := json.Marshal(def)
	if err != nil {
		return nil, err
	}
	if len(headerValues(def)) == 0 {
		return raw, nil
	}
	// Seal a deep copy: the caller's maps keep the plain values.
	cp := newLike(def)
	if err := json.Unmarshal(raw, cp); err != nil {
		return nil, err
	}
	err = eachHeaders(cp, func(place string, h map[string]string) error {
		for name, v := range h {
			sv, err := s.keys.Seal(v, place+name)
			if err != nil {
				return err
			}
			h[name] = sv
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return json.Marshal(cp)
}

// newLike returns a new zero definition of def's type.
func newLike(def any) any {
	switch def.(type) {
	case *actions.Action:
		return &actions.Action{}
	case *actions.Workflow:
		return &actions.Workflow{}
	}
	panic(fmt.Sprintf("redisactions: no definition type %T", def))
}

// decode decodes a stored definition into dst and opens its headers.
func (s *Store) decode(raw []byte, dst any) error {
	if err := json.Unmarshal(raw, dst); err != nil {
		return err
	}
	return eachHeaders(dst, func(place string, h map[string]string) error {
		for name, v := range h {
			pv, err := s.keys.Open(v, place+name)
			if err != nil {
				return err
			}
			h[name] = pv
		}
		return nil
	})
}

// SecretCensus counts the stored signing secrets and webhook header
// values by the key that sealed them ("" = plain text), opening none.
func (s *Store) SecretCensus(ctx context.Context) (secretbox.Census, error) {
	c := secretbox.Census{}
	err := s.eachSecretKey(ctx, func(key string) error {
		v, err := s.rdb.Get(ctx, key).Result()
		if errors.Is(err, redis.Nil) {
			return nil
		}
		c.Add(v)
		return err
	})
	if err != nil {
		return nil, err
	}
	err = s.eachDefinitionKey(ctx, func(key string, kind any) error {
		vals, err := s.rdb.HGetAll(ctx, key).Result()
		if err != nil {
			return err
		}
		return eachVersion(key, vals, kind, func(_, _ string, def any) error {
			for _, v := range headerValues(def) {
				c.Add(v)
			}
			return nil
		})
	})
	return c, err
}

// ResealSecrets seals again, with the primary key, every signing secret
// and header value stored in plain text or under an older key; it returns
// how many values (secrets or definition versions) it rewrote. A write
// that races it wins.
func (s *Store) ResealSecrets(ctx context.Context) (int, error) {
	n := 0
	err := s.eachSecretKey(ctx, func(key string) error {
		action := strings.TrimPrefix(key, s.p+"secret|")
		return s.rewrite(ctx, key, func(tx *redis.Tx, p redis.Pipeliner) error {
			v, err := tx.Get(ctx, key).Result()
			if errors.Is(err, redis.Nil) || err == nil && s.keys.Current(v) {
				return nil
			}
			if err != nil {
				return err
			}
			plain, err := s.keys.Open(v, signingPlace(action))
			if err != nil {
				return err
			}
			sealed, err := s.keys.Seal(plain, signingPlace(action))
			if err != nil {
				return err
			}
			p.Set(ctx, key, sealed, 0)
			n++
			return nil
		})
	})
	if err != nil {
		return n, err
	}
	err = s.eachDefinitionKey(ctx, func(key string, kind any) error {
		return s.rewrite(ctx, key, func(tx *redis.Tx, p redis.Pipeliner) error {
			vals, err := tx.HGetAll(ctx, key).Result()
			if err != nil {
				return err
			}
			return eachVersion(key, vals, kind, func(field, raw string, def any) error {
				stale := slices.ContainsFunc(headerValues(def), func(v string) bool { return !s.keys.Current(v) })
				if !stale {
					return nil
				}
				if err := s.decode([]byte(raw), def); err != nil {
					return fmt.Errorf("%s %s: %w", key, field, err)
				}
				out, err := s.encode(def)
				if err != nil {
					return err
				}
				p.HSet(ctx, key, field, out)
				n++
				return nil
			})
		})
	})
	return n, err
}

// eachVersion decodes every version (the "v<n>" fields) of the definition
// hash key holding vals, headers still sealed, and calls fn with each.
func eachVersion(key string, vals map[string]string, kind any, fn func(field, raw string, def any) error) error {
	for field, raw := range vals {
		if !strings.HasPrefix(field, "v") {
			continue
		}
		def := newLike(kind)
		if err := json.Unmarshal([]byte(raw), def); err != nil {
			return fmt.Errorf("decode %s %s: %w", key, field, err)
		}
		if err := fn(field, raw, def); err != nil {
			return err
		}
	}
	return nil
}

// headerValues lists the header values of a definition as they are held
// (sealed, when it was decoded from its stored form without opening).
func headerValues(def any) []string {
	var out []string
	_ = eachHeaders(def, func(_ string, h map[string]string) error {
		for _, v := range h {
			out = append(out, v)
		}
		return nil
	})
	return out
}

// rewrite runs fn under an optimistic transaction on key; the writes fn
// queues on p apply only when key did not change meanwhile (a concurrent
// writer seals with its own key, so losing the race is fine).
func (s *Store) rewrite(ctx context.Context, key string, fn func(tx *redis.Tx, p redis.Pipeliner) error) error {
	err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error { return fn(tx, p) })
		return err
	}, key)
	if errors.Is(err, redis.TxFailedErr) {
		return nil
	}
	return err
}

// eachSecretKey calls fn with the key of every stored signing secret.
func (s *Store) eachSecretKey(ctx context.Context, fn func(key string) error) error {
	iter := s.rdb.Scan(ctx, 0, s.p+"secret|*", 200).Iterator()
	for iter.Next(ctx) {
		if err := fn(iter.Val()); err != nil {
			return err
		}
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("scan signing secrets: %w", err)
	}
	return nil
}

// eachDefinitionKey calls fn with the hash key of every action and
// workflow and a zero definition of its kind (see newLike).
func (s *Store) eachDefinitionKey(ctx context.Context, fn func(key string, kind any) error) error {
	for _, kind := range []string{"action", "workflow"} {
		ids, err := s.rdb.SMembers(ctx, s.p+kind+"s").Result()
		if err != nil {
			return fmt.Errorf("list %ss: %w", kind, err)
		}
		for _, id := range ids {
			var def any = &actions.Action{}
			if kind == "workflow" {
				def = &actions.Workflow{}
			}
			if err := fn(s.p+kind+"|"+id, def); err != nil {
				return fmt.Errorf("%s %s: %w", kind, id, err)
			}
		}
	}
	return nil
}
