package redisactions

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/actions"
)

// Page sizes of ListRuns.
const (
	defaultRunLimit = 100
	maxRunLimit     = 500
	// minRunChunk is the least a filtered listing reads at once after its
	// first read came up short.
	minRunChunk = 200
)

// ListRuns pages through one index, newest first: the most selective that
// applies (the entity's, the requester's, the action's, the status's, else
// all runs), keeping the runs that match every filter and f.Visible. One
// call reads at most actions.MaxRunsScanned index entries and run records,
// so a page may hold fewer than f.Limit runs, even none, and still have a
// Next. A cursor is the position of the last entry read (creation time and
// run id), not an offset: runs created meanwhile neither repeat nor shift
// the following pages.
func (s *Store) ListRuns(ctx context.Context, f actions.RunFilter) (*actions.RunPage, error) {
	if f.Limit <= 0 || f.Limit > maxRunLimit {
		f.Limit = defaultRunLimit
	}
	pos, err := decodeRunPos(f.Cursor)
	if err != nil {
		return nil, err
	}
	index := s.runIndex(f)
	out := &actions.RunPage{Runs: []*actions.Run{}}
	budget := actions.MaxRunsScanned
	n := f.Limit + 1 // the cursor's own entry usually comes first
	for {
		n = min(n, budget)
		by := &redis.ZRangeBy{Max: "+inf", Min: "-inf", Offset: int64(pos.skip), Count: int64(n)}
		if pos.set {
			by.Max = strconv.FormatFloat(pos.score, 'f', -1, 64)
		}
		zs, err := s.rdb.ZRevRangeByScoreWithScores(ctx, index, by).Result()
		if err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		budget -= len(zs)
		end := len(zs) < n
		listed := 0
		for listed < len(zs) && pos.covers(zs[listed]) {
			listed++
		}
		if listed == len(zs) && !end {
			// A whole read of one millisecond's runs, all listed before.
			pos.skip += listed
		}
		zs = zs[listed:]
		runs, err := s.runRecords(ctx, zs)
		if err != nil {
			return nil, err
		}
		for i, z := range zs {
			pos = runPos{set: true, score: z.Score, id: z.Member.(string)}
			ok, err := keepRun(f, runs[i])
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			out.Runs = append(out.Runs, runs[i])
			if len(out.Runs) == f.Limit {
				if i < len(zs)-1 || !end {
					out.Next = pos.encode()
				}
				return out, nil
			}
		}
		if end {
			return out, nil
		}
		if budget <= 0 {
			out.Next = pos.encode()
			return out, nil
		}
		n = max(f.Limit-len(out.Runs)+1, minRunChunk)
	}
}

// runIndex picks the index a listing reads.
func (s *Store) runIndex(f actions.RunFilter) string {
	switch {
	case strings.Contains(f.Entity, "/"):
		return s.p + "runs|entity|" + f.Entity
	case f.TriggeredBy != "":
		return s.p + "runs|requester|" + f.TriggeredBy
	case f.Action != "":
		return s.p + "runs|action|" + f.Action
	case f.Status != "":
		return s.p + "runs|status|" + f.Status
	}
	return s.p + "runs"
}

// runRecords reads the records of index entries in one round trip; a
// missing or unreadable record is nil.
func (s *Store) runRecords(ctx context.Context, zs []redis.Z) ([]*actions.Run, error) {
	if len(zs) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(zs))
	for i, z := range zs {
		cmds[i] = pipe.HGet(ctx, s.p+"run|"+z.Member.(string), "json")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	out := make([]*actions.Run, len(zs))
	for i, cmd := range cmds {
		raw, err := cmd.Bytes()
		if err != nil {
			continue
		}
		var r actions.Run
		if json.Unmarshal(raw, &r) == nil {
			out[i] = &r
		}
	}
	return out, nil
}

// keepRun reports whether a listing keeps r (nil: a record gone meanwhile).
func keepRun(f actions.RunFilter, r *actions.Run) (bool, error) {
	if r == nil || (f.Action != "" && r.Action != f.Action) || (f.Status != "" && r.Status != f.Status) ||
		(f.TriggeredBy != "" && r.TriggeredBy != f.TriggeredBy) ||
		(f.Entity != "" && r.Entity != f.Entity && r.Blueprint+"/"+r.Entity != f.Entity) {
		return false, nil
	}
	if f.Visible == nil {
		return true, nil
	}
	return f.Visible(r)
}

// runPos is a position in a run index, newest first: the last entry read
// (its score, the creation time in ms, and its member, the run id). skip
// counts entries to pass over before it, when more runs of one
// millisecond than one read holds were listed already.
type runPos struct {
	set   bool
	score float64
	id    string
	skip  int
}

// covers reports whether z comes at or before p. Redis orders runs of the
// same score by id, descending here.
func (p runPos) covers(z redis.Z) bool {
	return p.set && (z.Score > p.score || z.Score == p.score && z.Member.(string) >= p.id)
}

func (p runPos) encode() string {
	raw := strconv.FormatFloat(p.score, 'f', -1, 64) + "|" + strconv.Itoa(p.skip) + "|" + p.id
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// decodeRunPos parses a cursor ("": the newest entry).
func decodeRunPos(cursor string) (runPos, error) {
	if cursor == "" {
		return runPos{}, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return runPos{}, actions.ErrInvalidCursor
	}
	parts := strings.SplitN(string(raw), "|", 3)
	if len(parts) != 3 || parts[2] == "" {
		return runPos{}, actions.ErrInvalidCursor
	}
	score, err1 := strconv.ParseFloat(parts[0], 64)
	skip, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil || skip < 0 || math.IsNaN(score) || math.IsInf(score, 0) {
		return runPos{}, actions.ErrInvalidCursor
	}
	return runPos{set: true, score: score, id: parts[2], skip: skip}, nil
}
