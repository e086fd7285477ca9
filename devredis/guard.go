package devredis

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2/server"
	"github.com/redis/go-redis/v9"
)

// introduction is the command a connection dialled through Server.Hook
// sends first, with the server's token, so the server knows its writes are
// logged. It is answered by the guard and never reaches miniredis.
const introduction = "DEVREDIS.HOOKED"

// introTimeout bounds the introduction when the dial context has no deadline.
const introTimeout = 5 * time.Second

// guard refuses writes from connections that did not come through
// Server.Hook: they would bypass the AOF, be lost on a crash and, replayed
// around, could leave the restored data inconsistent. Reads from any
// connection pass (inspecting the data with redis-cli is harmless).
type guard struct {
	token string

	mu     sync.Mutex
	hooked map[*server.Peer]struct{} // connections that introduced themselves
}

func newGuard() (*guard, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("guard token: %w", err)
	}
	return &guard{token: hex.EncodeToString(b), hooked: map[*server.Peer]struct{}{}}, nil
}

// preHook runs before miniredis executes each command; true means the
// command was answered here.
func (g *guard) preHook(p *server.Peer, cmd string, args ...string) bool {
	if cmd == introduction {
		if len(args) != 1 || args[0] != g.token {
			p.WriteError("ERR devredis: wrong token (the hook belongs to another server)")
			return true
		}
		g.mu.Lock()
		g.hooked[p] = struct{}{}
		g.mu.Unlock()
		p.OnDisconnect(func() {
			g.mu.Lock()
			delete(g.hooked, p)
			g.mu.Unlock()
		})
		p.WriteOK()
		return true
	}
	g.mu.Lock()
	_, hooked := g.hooked[p]
	g.mu.Unlock()
	if hooked {
		return false
	}
	name := strings.ToLower(cmd)
	if write, err := rule(name, append([]string{name}, args...)); err == nil && !write {
		return false
	}
	p.WriteError(fmt.Sprintf("ERR devredis: %s refused: only clients with Server.Hook may write (their writes are persisted)", name))
	return true
}

// dialHook introduces every connection it dials to the guard.
func (g *guard) dialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if err := g.introduce(ctx, conn); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("devredis: introduce connection: %w", err)
		}
		return conn, nil
	}
}

// introduce sends the introduction on a fresh connection and reads the
// reply. Nothing else is in flight, so the stream stays in step for
// go-redis.
func (g *guard) introduce(ctx context.Context, conn net.Conn) error {
	deadline := time.Now().Add(introTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return err
	}
	req := fmt.Sprintf("*2\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(introduction), introduction, len(g.token), g.token)
	if _, err := io.WriteString(conn, req); err != nil {
		return err
	}
	var reply []byte
	b := make([]byte, 1)
	for !bytes.HasSuffix(reply, []byte("\r\n")) {
		if len(reply) > 512 {
			return fmt.Errorf("reply too long: %q", reply)
		}
		if _, err := conn.Read(b); err != nil {
			return err
		}
		reply = append(reply, b[0])
	}
	if string(reply) != "+OK\r\n" {
		return fmt.Errorf("%s", bytes.TrimSpace(reply))
	}
	return conn.SetDeadline(time.Time{})
}

// introducer is the hook of the admin client: its connections may write
// (replay, restore) without being logged.
type introducer struct{ g *guard }

func (h introducer) DialHook(next redis.DialHook) redis.DialHook { return h.g.dialHook(next) }

func (introducer) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (introducer) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
