package devredis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Hook returns the go-redis hook that persists writes. Install it on every
// client that writes (client.AddHook(s.Hook())); the server refuses writes
// from connections it did not dial. Reads pass straight through; each write
// command, pipeline or MULTI/EXEC transaction that succeeds is appended to
// the AOF as one record before the call returns. Commands devredis cannot
// persist are refused (see the package doc).
func (s *Server) Hook() redis.Hook { return hook{s} }

type hook struct{ s *Server }

var _ redis.Hook = hook{}

// DialHook introduces each new connection to the server, which refuses
// writes from connections that did not.
func (h hook) DialHook(next redis.DialHook) redis.DialHook { return h.s.guard.dialHook(next) }

// ProcessHook persists single write commands.
func (h hook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		w, err := classify(cmd)
		if err != nil {
			cmd.SetErr(err)
			return err
		}
		if !w {
			return next(ctx, cmd)
		}
		cmds := []redis.Cmder{cmd}
		return h.s.write(ctx, cmds, cmds, false, func() error { return next(ctx, cmd) })
	}
}

// ProcessPipelineHook persists pipelines and transactions that write, each
// as one AOF record.
func (h hook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		inner, tx, writes, err := classifyPipeline(cmds)
		if err != nil {
			setErr(cmds, err)
			return err
		}
		if !writes {
			return next(ctx, cmds)
		}
		return h.s.write(ctx, cmds, inner, tx, func() error { return next(ctx, cmds) })
	}
}

// write runs exec (the command, pipeline or transaction) and logs what it
// changed, both under s.mu.
//
// Why execution is inside the lock: the AOF must list writes in the order
// the server applied them. Logging after success under a mutex that does not
// cover execution can reorder two writes that raced: two SETs of one key
// would replay with the other value winning, and two XADD * to one stream
// (IDs 5-0, then 5-1) would be logged 5-1, 5-0 and the second would fail on
// replay ("ID equal or smaller"). WATCH/MULTI does not help either: the
// first transaction's hook may be descheduled after EXEC while a second one
// WATCHes, reads the new value, commits and logs first. Holding the lock
// from send to append makes the log order the apply order for every hooked
// write; miniredis executes one command at a time anyway, so the only cost
// is that hooked writes do not overlap their loopback round trips. Reads
// (including WATCH, and XREAD BLOCK) do not take the lock; blocking writes
// are refused since they would hold it while waiting. One interaction to
// know: a WATCH transaction keeps its pool connection while it waits for the
// lock, so if more transactions than the pool size wait while a plain write
// holds the lock and needs a connection, that write fails with
// redis.ErrPoolTimeout (nothing is logged; the transactions then proceed).
func (s *Server) write(ctx context.Context, all, cmds []redis.Cmder, tx bool, exec func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writableLocked(ctx); err != nil {
		setErr(all, err)
		return err
	}
	err := exec()
	rec, ok := recordFor(all, cmds, tx, err, time.Now())
	if !ok {
		// The outcome is unknown (transport error after sending) or cannot be
		// expressed as a deterministic command: record the state itself.
		s.log.Warn("devredis: write not expressible in the aof, re-snapshotting", "cmd", all[0].Name(), "err", err)
		if cerr := s.compactLocked(); cerr != nil {
			s.broken = fmt.Errorf("re-snapshot: %w", cerr)
			s.log.Error("devredis: re-snapshot failed; writes refused until it succeeds", "err", cerr)
		}
		return err
	}
	if len(rec) > 0 {
		if aerr := s.appendLocked(encodeRecord(rec)); aerr != nil {
			aerr = fmt.Errorf("devredis: %w", aerr)
			setErr(all, aerr)
			return aerr
		}
	}
	return err
}

func (s *Server) writableLocked(ctx context.Context) error {
	if s.closed {
		return ErrClosed
	}
	if s.broken != nil {
		return fmt.Errorf("devredis: persistence failed: %w", s.broken)
	}
	return ctx.Err()
}

// recordFor returns the commands to log for a finished write. ok is false
// when the outcome cannot be logged as commands (see Server.write).
func recordFor(all, cmds []redis.Cmder, tx bool, err error, now time.Time) (rec [][]string, ok bool) {
	if tx {
		if err != nil && !isRedisError(err) {
			return nil, notSent(err) // otherwise unknown whether EXEC ran
		}
		if errors.Is(err, redis.TxFailedErr) || redis.IsExecAbortError(err) {
			return nil, true // nothing applied
		}
		for _, c := range []redis.Cmder{all[0], all[len(all)-1]} {
			if e := c.Err(); e != nil {
				return nil, isRedisError(e) // MULTI or EXEC refused: nothing applied
			}
		}
	}
	for _, c := range cmds {
		if e := c.Err(); e != nil && !errors.Is(e, redis.Nil) {
			if errors.Is(e, redis.TxFailedErr) {
				return nil, true
			}
			if isRedisError(e) || notSent(e) {
				continue // rejected by the server, or never sent: nothing changed
			}
			return nil, false // transport error: unknown whether it ran
		}
		if w, _ := classify(c); !w {
			continue
		}
		out, ok := rewrite(c, now)
		if !ok {
			return nil, false
		}
		rec = append(rec, out...)
	}
	return rec, true
}

// rewrite turns a successful write into deterministic commands that replay
// to the same state: XADD gets the ID the server assigned, SPOP becomes SREM
// of the popped members, absolute expiry times become relative ones
// (miniredis keeps TTLs as durations). ok is false when that is impossible.
func rewrite(c redis.Cmder, now time.Time) (out [][]string, ok bool) {
	args, err := cmdArgs(c)
	if err != nil {
		return nil, false
	}
	nilReply := errors.Is(c.Err(), redis.Nil)
	switch c.Name() {
	case "xadd":
		i := xaddIDIndex(args)
		if i < 0 {
			return nil, false
		}
		if !strings.Contains(args[i], "*") {
			break
		}
		if nilReply {
			return nil, true // NOMKSTREAM on a missing stream: nothing added
		}
		ids, ok := resultStrings(c)
		if !ok || len(ids) != 1 || ids[0] == "" {
			return nil, false
		}
		args[i] = ids[0]
	case "spop":
		if nilReply {
			return nil, true
		}
		members, ok := resultStrings(c)
		if !ok || len(args) < 2 {
			return nil, false
		}
		if len(members) == 0 {
			return nil, true
		}
		return [][]string{append([]string{"srem", args[1]}, members...)}, true
	case "expireat", "pexpireat":
		if len(args) < 3 {
			return nil, false
		}
		ms, ok := relativeMillis(args[2], c.Name() == "expireat", now)
		if !ok {
			return nil, false
		}
		return [][]string{append([]string{"pexpire", args[1], strconv.FormatInt(ms, 10)}, args[3:]...)}, true
	case "set", "getex":
		first := 3 // SET key value [options]
		if c.Name() == "getex" {
			first = 2 // GETEX key [options]
		}
		for i := first; i < len(args); i++ {
			switch strings.ToLower(args[i]) {
			case "ex", "px", "ifeq", "ifne", "ifdeq", "ifdne":
				i++ // skip the option's value
			case "exat", "pxat":
				if i+1 >= len(args) {
					return nil, false
				}
				ms, ok := relativeMillis(args[i+1], strings.EqualFold(args[i], "exat"), now)
				if !ok || ms <= 0 {
					// Already expired: the effect depends on NX/XX/GET; let
					// the caller snapshot instead.
					return nil, false
				}
				args[i], args[i+1] = "px", strconv.FormatInt(ms, 10)
				i++
			}
		}
	}
	return [][]string{args}, true
}

// relativeMillis converts a Unix timestamp (seconds or milliseconds) into
// milliseconds from now.
func relativeMillis(ts string, seconds bool, now time.Time) (int64, bool) {
	v, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return 0, false
	}
	if seconds {
		v *= 1000
	}
	return v - now.UnixMilli(), true
}

// xaddIDIndex finds the entry ID argument of XADD key [NOMKSTREAM]
// [MAXLEN|MINID [=|~] threshold [LIMIT count]] id field value ...
func xaddIDIndex(args []string) int {
	i := 2
	for i < len(args) {
		switch strings.ToLower(args[i]) {
		case "nomkstream":
			i++
		case "maxlen", "minid":
			i++
			if i < len(args) && (args[i] == "=" || args[i] == "~") {
				i++
			}
			i++ // threshold
		case "limit":
			i += 2
		default:
			return i
		}
	}
	return -1
}

// resultStrings extracts a string or string-list reply.
func resultStrings(c redis.Cmder) ([]string, bool) {
	switch c := c.(type) {
	case *redis.StringCmd:
		return []string{c.Val()}, true
	case *redis.StringSliceCmd:
		return c.Val(), true
	case *redis.Cmd:
		switch v := c.Val().(type) {
		case string:
			return []string{v}, true
		case []any:
			out := make([]string, len(v))
			for i, e := range v {
				s, ok := e.(string)
				if !ok {
					return nil, false
				}
				out[i] = s
			}
			return out, true
		case nil:
			return nil, true
		}
	}
	return nil, false
}

func isTx(cmds []redis.Cmder) bool {
	return len(cmds) >= 2 && cmds[0].Name() == "multi" && cmds[len(cmds)-1].Name() == "exec"
}

func setErr(cmds []redis.Cmder, err error) {
	for _, c := range cmds {
		c.SetErr(err)
	}
}

// notSent reports errors go-redis returns before sending anything.
func notSent(err error) bool {
	return errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, redis.ErrPoolExhausted) || errors.Is(err, redis.ErrClosed)
}

func isRedisError(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}
