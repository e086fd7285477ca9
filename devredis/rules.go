package devredis

import (
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

// cmdKind says how the hook treats a command.
type cmdKind uint8

const (
	kindUnknown cmdKind = iota // refused: no persistence rule
	kindRead                   // passed through, not logged
	kindWrite                  // logged (after rewrite)
	kindArgs                   // depends on the arguments, see classify
	kindRefused                // refused with the reason in refusals
)

// kinds is the command table: how Server.Hook, the server's guard and
// Checker treat each command (lower case). It is the rules for stores of the
// package doc; a command missing from it is refused.
var kinds = map[string]cmdKind{}

// refusals holds why each kindRefused command is refused.
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
func classify(cmd redis.Cmder) (write bool, err error) {
	name := cmd.Name()
	if kinds[name] != kindArgs {
		return rule(name, nil)
	}
	args, err := cmdArgs(cmd)
	if err != nil {
		return false, err
	}
	return rule(name, args)
}

// classifyPipeline classifies the commands of a pipeline, or of a MULTI/EXEC
// transaction (tx) whose commands are inner (MULTI and EXEC stripped): whether
// any of them writes, or why the first refused one is.
func classifyPipeline(cmds []redis.Cmder) (inner []redis.Cmder, tx, writes bool, err error) {
	inner, tx = cmds, isTx(cmds)
	if tx {
		inner = cmds[1 : len(cmds)-1]
	}
	for _, c := range inner {
		w, err := classify(c)
		if err != nil {
			return nil, false, false, err
		}
		writes = writes || w
	}
	return inner, tx, writes, nil
}

// rule applies the command table to the command name (lower case). args
// (name first) are only read for the commands whose effect depends on them.
func rule(name string, args []string) (write bool, err error) {
	switch kinds[name] {
	case kindRead:
		return false, nil
	case kindWrite:
		return true, nil
	case kindRefused:
		return false, fmt.Errorf("%w: %s: %s", ErrUnsupportedCommand, name, refusals[name])
	case kindArgs:
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
