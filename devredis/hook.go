package devredis

import (
	"context"
	"encoding"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrUnsupportedCommand is returned (wrapped, with the reason) for commands
// whose effects devredis cannot persist; they are not sent to the server.
var ErrUnsupportedCommand = errors.New("devredis: command not supported")

// Hook returns the go-redis hook that persists writes. Install it on every
// client that writes (client.AddHook(s.Hook())): reads pass straight
// through; each write command, pipeline or MULTI/EXEC transaction that
// succeeds is appended to the AOF as one record before the call returns.
func (s *Server) Hook() redis.Hook { return hook{s} }

type hook struct{ s *Server }

var _ redis.Hook = hook{}

// DialHook passes dialing through unchanged.
func (hook) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook persists single write commands.
func (h hook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		w, err := classify(cmd, false)
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
		inner, tx := cmds, isTx(cmds)
		if tx {
			inner = cmds[1 : len(cmds)-1]
		}
		writes := false
		for _, c := range inner {
			w, err := classify(c, true)
			if err != nil {
				setErr(cmds, err)
				return err
			}
			writes = writes || w
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
		if w, _ := classify(c, true); !w {
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

// cmdKind says how the hook treats a command.
type cmdKind uint8

const (
	kindUnknown cmdKind = iota // refused: no persistence rule
	kindRead                   // passed through, not logged
	kindWrite                  // logged (after rewrite)
	kindArgs                   // depends on the arguments, see classify
	kindRefused                // refused with the reason in refusals
)

var kinds = map[string]cmdKind{}

var refusals = map[string]string{}

func init() {
	for _, n := range strings.Fields(`
		get mget getrange substr strlen getbit bitcount bitpos lcs
		exists type ttl pttl expiretime pexpiretime keys scan randomkey dump touch object memory
		hget hmget hgetall hkeys hvals hlen hexists hstrlen hscan hrandfield httl hpttl hexpiretime hpexpiretime
		smembers sismember smismember scard srandmember sscan sinter sunion sdiff sintercard
		zscore zmscore zrange zrangebyscore zrangebylex zrevrange zrevrangebyscore zrevrangebylex
		zrank zrevrank zcard zcount zlexcount zscan zrandmember zunion zinter zdiff zintercard
		lrange lindex llen lpos
		xrange xrevrange xlen xread xinfo xpending
		geopos geodist geohash georadius_ro georadiusbymember_ro geosearch sort_ro pfcount
		ping echo hello auth client info command time dbsize lastsave role config readonly readwrite
		watch unwatch wait publish pubsub subscribe unsubscribe psubscribe punsubscribe quit cluster`) {
		kinds[n] = kindRead
	}
	for _, n := range strings.Fields(`
		set setnx setex psetex mset msetnx getset getdel getex append setrange setbit bitop
		incr incrby decr decrby incrbyfloat del delex unlink
		expire pexpire expireat pexpireat persist rename renamenx
		hset hmset hsetnx hdel hincrby hincrbyfloat
		sadd srem smove spop sdiffstore sinterstore sunionstore
		zadd zrem zincrby zremrangebyscore zremrangebylex zremrangebyrank zpopmin zpopmax zmpop
		zunionstore zinterstore zdiffstore zrangestore
		lpush rpush lpushx rpushx lpop rpop linsert lset lrem ltrim rpoplpush lmove lmpop
		xadd xtrim xdel geoadd geosearchstore flushdb flushall`) {
		kinds[n] = kindWrite
	}
	for _, n := range []string{"select", "copy", "sort", "georadius", "georadiusbymember"} {
		kinds[n] = kindArgs
	}
	refuse := func(reason string, names string) {
		for _, n := range strings.Fields(names) {
			kinds[n] = kindRefused
			refusals[n] = reason
		}
	}
	refuse("Lua scripts and functions are not supported (their writes cannot be persisted)",
		"eval evalsha eval_ro evalsha_ro script fcall fcall_ro function")
	refuse("blocking pops are not supported", "blpop brpop brpoplpush blmove blmpop bzpopmin bzpopmax bzmpop")
	refuse("stream consumer groups are not persisted", "xgroup xreadgroup xack xclaim xautoclaim xsetid")
	refuse("HyperLogLog keys are not persisted", "pfadd pfmerge pfdebug")
	refuse("hash field TTLs are not persisted", "hexpire hpexpire hexpireat hpexpireat hpersist hsetex hgetex")
	refuse("only database 0 is persisted", "move swapdb")
	refuse("not supported", "restore migrate debug save bgsave bgrewriteaof shutdown replicaof slaveof monitor sync psync")
	refuse("use TxPipelined for MULTI/EXEC", "multi exec discard")
}

// classify reports whether cmd writes, or why it is refused.
func classify(cmd redis.Cmder, inPipeline bool) (write bool, err error) {
	name := cmd.Name()
	switch kinds[name] {
	case kindRead:
		return false, nil
	case kindWrite:
		return true, nil
	case kindRefused:
		return false, fmt.Errorf("%w: %s: %s", ErrUnsupportedCommand, name, refusals[name])
	case kindArgs:
		args, err := cmdArgs(cmd)
		if err != nil {
			return false, err
		}
		switch name {
		case "select":
			if len(args) == 2 && args[1] == "0" {
				return false, nil
			}
			return false, fmt.Errorf("%w: select: only database 0 is persisted", ErrUnsupportedCommand)
		case "copy":
			for i := 3; i+1 < len(args); i++ {
				if strings.EqualFold(args[i], "db") && args[i+1] != "0" {
					return false, fmt.Errorf("%w: copy: only database 0 is persisted", ErrUnsupportedCommand)
				}
			}
			return true, nil
		default: // sort, georadius, georadiusbymember write only with STORE
			for _, a := range args[1:] {
				if strings.EqualFold(a, "store") || strings.EqualFold(a, "storedist") {
					return true, nil
				}
			}
			return false, nil
		}
	}
	return false, fmt.Errorf("%w: %s: no persistence rule for this command", ErrUnsupportedCommand, name)
}

// cmdArgs renders a command's arguments exactly as go-redis sends them.
func cmdArgs(c redis.Cmder) ([]string, error) {
	raw := c.Args()
	args := make([]string, len(raw))
	for i, a := range raw {
		s, err := argString(a)
		if err != nil {
			return nil, err
		}
		args[i] = s
	}
	return args, nil
}

// argString mirrors go-redis's proto.Writer.WriteArg.
func argString(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case []byte:
		return string(v), nil
	case int:
		return strconv.FormatInt(int64(v), 10), nil
	case int8:
		return strconv.FormatInt(int64(v), 10), nil
	case int16:
		return strconv.FormatInt(int64(v), 10), nil
	case int32:
		return strconv.FormatInt(int64(v), 10), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case uint:
		return strconv.FormatUint(uint64(v), 10), nil
	case uint8:
		return strconv.FormatUint(uint64(v), 10), nil
	case uint16:
		return strconv.FormatUint(uint64(v), 10), nil
	case uint32:
		return strconv.FormatUint(uint64(v), 10), nil
	case uint64:
		return strconv.FormatUint(v, 10), nil
	case uintptr:
		return strconv.FormatUint(uint64(v), 10), nil
	case float32:
		return strconv.FormatFloat(float64(v), 'f', -1, 64), nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	case bool:
		if v {
			return "1", nil
		}
		return "0", nil
	case time.Time:
		return v.Format(time.RFC3339Nano), nil
	case *time.Time:
		if v == nil {
			return time.Time{}.Format(time.RFC3339Nano), nil
		}
		return v.Format(time.RFC3339Nano), nil
	case time.Duration:
		return strconv.FormatInt(v.Nanoseconds(), 10), nil
	case *time.Duration:
		if v == nil {
			return "0", nil
		}
		return strconv.FormatInt(v.Nanoseconds(), 10), nil
	case encoding.BinaryMarshaler:
		b, err := v.MarshalBinary()
		return string(b), err
	case net.IP:
		return string(v), nil
	}
	// go-redis accepts pointers to the basic types above; nil means zero.
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return argString(reflect.Zero(rv.Type().Elem()).Interface())
		}
		return argString(rv.Elem().Interface())
	}
	return "", fmt.Errorf("devredis: cannot encode argument of type %T", v)
}
