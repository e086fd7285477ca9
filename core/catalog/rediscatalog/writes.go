package rediscatalog

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/catalog"
)

// writes collects one transaction's commands, grouped per key so that a
// 10,000-entity batch sends one ZADD per index rather than one per entity.
// Removals go before additions: an index member whose score changed is
// removed and re-added in the same EXEC.
type writes struct {
	dels   []string
	sets   []kv
	keys   map[string]*keyWrites
	order  []string // keys in first-seen order
	events []queuedEvent
	// depths are the automation depths of the marks written (key →
	// depth; 0 deletes it).
	depths map[string]int
}

// keyWrites are the member changes queued for one key.
type keyWrites struct {
	zrems, srems, sadds []any
	zadds               []redis.Z
	// zincrs are members whose score goes up by one (dirty marks).
	zincrs []string
	// once holds the members queued by zaddOnce.
	once map[string]struct{}
}

type kv struct {
	key string
	val []byte
}

type queuedEvent struct {
	raw     []byte // the event's JSON
	history string
	// prelude is pushed to the history before raw: the creation event of an
	// entity whose history was never written (see tx.historyPrelude).
	prelude []byte
}

func newWrites() *writes {
	return &writes{keys: map[string]*keyWrites{}}
}

func (w *writes) empty() bool {
	return len(w.dels) == 0 && len(w.sets) == 0 && len(w.order) == 0 && len(w.events) == 0 && len(w.depths) == 0
}

func (w *writes) key(k string) *keyWrites {
	kw := w.keys[k]
	if kw == nil {
		kw = &keyWrites{}
		w.keys[k] = kw
		w.order = append(w.order, k)
	}
	return kw
}

func (w *writes) del(key string)             { w.dels = append(w.dels, key) }
func (w *writes) set(key string, val []byte) { w.sets = append(w.sets, kv{key, val}) }
func (w *writes) zrem(key, member string)    { kw := w.key(key); kw.zrems = append(kw.zrems, member) }
func (w *writes) srem(key, member string)    { kw := w.key(key); kw.srems = append(kw.srems, member) }
func (w *writes) sadd(key, member string)    { kw := w.key(key); kw.sadds = append(kw.sadds, member) }
func (w *writes) zaddLex(key, member string) {
	kw := w.key(key)
	kw.zadds = append(kw.zadds, redis.Z{Member: member})
}

// zaddOnce queues a lexical member unless this transaction already did:
// a values index gets the same few values from every entity of a batch.
func (kw *keyWrites) zaddOnce(member string) {
	if _, dup := kw.once[member]; dup {
		return
	}
	if kw.once == nil {
		kw.once = map[string]struct{}{}
	}
	kw.once[member] = struct{}{}
	kw.zadds = append(kw.zadds, redis.Z{Member: member})
}
func (w *writes) event(raw []byte, history string, prelude []byte) {
	w.events = append(w.events, queuedEvent{raw: raw, history: history, prelude: prelude})
}

// apply queues every command on p (inside MULTI).
func (w *writes) apply(ctx context.Context, p redis.Pipeliner, s *Store) {
	if len(w.dels) > 0 {
		p.Del(ctx, w.dels...)
	}
	for _, k := range w.order {
		if kw := w.keys[k]; len(kw.zrems) > 0 {
			p.ZRem(ctx, k, kw.zrems...)
		}
		if kw := w.keys[k]; len(kw.srems) > 0 {
			p.SRem(ctx, k, kw.srems...)
		}
	}
	if len(w.sets) > 0 {
		args := make([]any, 0, 2*len(w.sets))
		for _, s := range w.sets {
			args = append(args, s.key, s.val)
		}
		p.MSet(ctx, args...)
	}
	for _, k := range w.order {
		if kw := w.keys[k]; len(kw.zadds) > 0 {
			p.ZAdd(ctx, k, kw.zadds...)
		}
		if kw := w.keys[k]; len(kw.sadds) > 0 {
			p.SAdd(ctx, k, kw.sadds...)
		}
		for _, m := range w.keys[k].zincrs {
			p.ZIncrBy(ctx, k, 1, m)
		}
	}
	for key, depth := range w.depths {
		if depth > 0 {
			p.Set(ctx, key, depth, markDepthTTL)
		} else {
			p.Del(ctx, key)
		}
	}
	for _, q := range w.events {
		if q.raw == nil {
			continue // a write that announces nothing (Event without a type)
		}
		raw := q.raw
		p.XAdd(ctx, &redis.XAddArgs{
			Stream: s.keys.events(),
			MaxLen: s.opts.EventRetention,
			Approx: true,
			Values: []any{"e", raw},
		})
		if q.history != "" {
			if q.prelude != nil {
				p.RPush(ctx, q.history, q.prelude, raw)
			} else {
				p.RPush(ctx, q.history, raw)
			}
			p.LTrim(ctx, q.history, -s.opts.HistoryLength, -1)
		}
	}
}

// encodeEvent writes an event's JSON (nil for an event without a type:
// nothing to announce).
func encodeEvent(ev catalog.Event) []byte {
	if ev.Type == "" {
		return nil
	}
	b, _, _ := appendEvent(make([]byte, 0, len(ev.Before)+len(ev.After)+200), ev, nil)
	return b
}

// appendEvent appends an event's JSON to b, by hand: Before and After are
// already JSON produced by this package, so re-validating them (as
// encoding/json does for RawMessage) would only burn CPU on the write path.
// When after is set, its document is encoded as the event's "after" (in
// place of ev.After) at b[start:end]: an entity's SET and its event then
// share one buffer.
func appendEvent(b []byte, ev catalog.Event, after *catalog.Entity) (out []byte, start, end int) {
	raw := func(b []byte, r json.RawMessage) []byte {
		if len(r) == 0 {
			return append(b, "null"...)
		}
		return append(b, r...)
	}
	b = append(b, `{"type":`...)
	b = catalog.AppendJSONString(b, ev.Type)
	b = append(b, `,"blueprint":`...)
	b = catalog.AppendJSONString(b, ev.Blueprint)
	b = append(b, `,"identifier":`...)
	b = catalog.AppendJSONString(b, ev.Identifier)
	b = append(b, `,"before":`...)
	b = raw(b, ev.Before)
	b = append(b, `,"after":`...)
	start = len(b)
	if after != nil {
		b = catalog.AppendEntity(b, after)
	} else {
		b = raw(b, ev.After)
	}
	end = len(b)
	b = append(b, `,"actor":`...)
	b = catalog.AppendJSONString(b, ev.Actor)
	b = append(b, `,"at":`...)
	b = catalog.AppendJSONTime(b, ev.At)
	if len(ev.Detail) > 0 {
		b = append(b, `,"detail":`...)
		b = append(b, ev.Detail...)
	}
	if ev.Depth > 0 {
		b = append(b, `,"depth":`...)
		b = strconv.AppendInt(b, int64(ev.Depth), 10)
	}
	return append(b, '}'), start, end
}
