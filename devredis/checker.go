package devredis

import (
	"context"
	"errors"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Checker is a go-redis hook that holds a client to devredis's command
// rules on any server (miniredis, redis-server) without persisting
// anything: it refuses, with the error Server.Hook would return, every
// command, pipeline or transaction devredis cannot persist, and remembers
// the refusal. Store tests install it so a store that breaks the rules
// fails its own tests, not only `portico dev`. The zero value is ready.
type Checker struct {
	mu      sync.Mutex
	refused []error
}

var _ redis.Hook = (*Checker)(nil)

// DialHook passes dialing through unchanged.
func (*Checker) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook refuses single commands devredis cannot persist.
func (c *Checker) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if _, err := classify(cmd); err != nil {
			return c.refuse([]redis.Cmder{cmd}, err)
		}
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook refuses pipelines and transactions holding a command
// devredis cannot persist.
func (c *Checker) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if _, _, _, err := classifyPipeline(cmds); err != nil {
			return c.refuse(cmds, err)
		}
		return next(ctx, cmds)
	}
}

func (c *Checker) refuse(cmds []redis.Cmder, err error) error {
	c.mu.Lock()
	c.refused = append(c.refused, err)
	c.mu.Unlock()
	setErr(cmds, err)
	return err
}

// Err returns every refusal so far, joined, or nil when there was none.
// Each wraps ErrUnsupportedCommand.
func (c *Checker) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return errors.Join(c.refused...)
}
