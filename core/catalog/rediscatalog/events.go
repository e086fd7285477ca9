package rediscatalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/catalog"
)

// Events reads the change stream after a stream id.
func (s *Store) Events(ctx context.Context, after string, count int, block time.Duration) ([]catalog.Event, error) {
	if after == "" {
		after = "0"
	}
	if after == "$" {
		last, err := s.rdb.XRevRangeN(ctx, s.keys.events(), "+", "-", 1).Result()
		if err != nil {
			return nil, fmt.Errorf("read events: %w", err)
		}
		after = "0"
		if len(last) == 1 {
			after = last[0].ID
		}
	}
	var msgs []redis.XMessage
	var err error
	switch {
	case block > 0 && s.opts.PollEvents > 0:
		msgs, err = s.pollEvents(ctx, after, count, block)
	case block > 0:
		msgs, err = s.blockEvents(ctx, after, count, block)
	default:
		msgs, err = s.rdb.XRangeN(ctx, s.keys.events(), "("+after, "+", int64(count)).Result()
	}
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	out := make([]catalog.Event, 0, len(msgs))
	for _, m := range msgs {
		raw, _ := m.Values["e"].(string)
		var ev catalog.Event
		if err := json.Unmarshal([]byte(raw), &ev); err != nil {
			return nil, fmt.Errorf("decode event %s: %w", m.ID, err)
		}
		ev.ID = m.ID
		out = append(out, ev)
	}
	return out, nil
}

// EventBounds returns the oldest and newest event ids in the stream.
func (s *Store) EventBounds(ctx context.Context) (string, string, error) {
	pipe := s.rdb.Pipeline()
	first := pipe.XRangeN(ctx, s.keys.events(), "-", "+", 1)
	last := pipe.XRevRangeN(ctx, s.keys.events(), "+", "-", 1)
	if _, err := pipe.Exec(ctx); err != nil {
		return "", "", fmt.Errorf("event bounds: %w", err)
	}
	var oldest, newest string
	if v := first.Val(); len(v) == 1 {
		oldest = v[0].ID
	}
	if v := last.Val(); len(v) == 1 {
		newest = v[0].ID
	}
	return oldest, newest, nil
}

// blockEvents waits up to block for events after the id (XREAD BLOCK).
func (s *Store) blockEvents(ctx context.Context, after string, count int, block time.Duration) ([]redis.XMessage, error) {
	res, err := s.rdb.XRead(ctx, &redis.XReadArgs{
		Streams: []string{s.keys.events(), after},
		Count:   int64(count),
		Block:   block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil || len(res) == 0 {
		return nil, err
	}
	return res[0].Messages, nil
}

// pollEvents waits up to block for events after the id by reading every
// PollEvents (see Options.PollEvents).
func (s *Store) pollEvents(ctx context.Context, after string, count int, block time.Duration) ([]redis.XMessage, error) {
	deadline := time.Now().Add(block)
	for {
		msgs, err := s.rdb.XRangeN(ctx, s.keys.events(), "("+after, "+", int64(count)).Result()
		if err != nil || len(msgs) > 0 {
			return msgs, err
		}
		wait := min(s.opts.PollEvents, time.Until(deadline))
		if wait <= 0 {
			return nil, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// History returns an entity's recent events, oldest first. The creation
// of an entity that never changed is not stored in its history list (see
// historyPrelude); it is reconstructed from the entity.
func (s *Store) History(ctx context.Context, ref catalog.Ref) ([]catalog.Event, error) {
	pipe := s.rdb.Pipeline()
	list := pipe.LRange(ctx, s.keys.history(ref.Blueprint, ref.Identifier), 0, -1)
	doc := pipe.Get(ctx, s.keys.entity(ref.Blueprint, ref.Identifier))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("history of %s/%s: %w", ref.Blueprint, ref.Identifier, err)
	}
	out := make([]catalog.Event, 0, len(list.Val())+1)
	for _, raw := range list.Val() {
		var ev catalog.Event
		if err := json.Unmarshal([]byte(raw), &ev); err != nil {
			return nil, fmt.Errorf("decode history of %s/%s: %w", ref.Blueprint, ref.Identifier, err)
		}
		out = append(out, ev)
	}
	if doc.Err() == nil {
		e, err := decodeEntity(doc.Val())
		if err != nil {
			return nil, fmt.Errorf("decode entity %s/%s: %w", ref.Blueprint, ref.Identifier, err)
		}
		if e.CreatedAt.Equal(e.UpdatedAt) {
			out = append(out, createdEvent(e))
			if n := int(s.opts.HistoryLength); len(out) > n {
				out = out[len(out)-n:]
			}
		}
	}
	return out, nil
}
