// Package redistest starts a real redis-server for tests, benchmarks and
// integration tests. The server is shared: every caller of Start while it
// runs gets the same one, and it is killed when the last of them finishes.
// Callers that need isolation flush it or use their own key prefix.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portico-dev/portico/internal/logbuf"
)

// NotFoundMessage is how Start fails when redis-server is not installed.
const NotFoundMessage = "redis-server not found: install it (apt-get install -y redis-server)"

var shared struct {
	sync.Mutex
	users int
	srv   *server
}

type server struct {
	addr string
	cmd  *exec.Cmd
	done chan struct{}
	log  *logbuf.Buffer
}

// Start returns the address (host:port) of a running redis-server, starting
// one when none runs. It fails t, never skips, when redis-server is missing
// or does not come up. The server runs with persistence off (--save ""
// --appendonly no) in a temporary directory and is killed in t.Cleanup once
// no test that asked for it is still running.
func Start(t testing.TB) string {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	if shared.srv == nil {
		srv, err := launch(t.TempDir())
		if err != nil {
			t.Fatalf("redistest: %v", err)
		}
		shared.srv = srv
	}
	shared.users++
	srv := shared.srv
	t.Cleanup(func() {
		shared.Lock()
		defer shared.Unlock()
		shared.users--
		if shared.users == 0 && shared.srv == srv {
			srv.stop()
			shared.srv = nil
		}
	})
	return srv.addr
}

func launch(dir string) (*server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("%s", NotFoundMessage)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		srv, err := startOn(bin, dir, port)
		if err == nil {
			return srv, nil
		}
		lastErr = err // most likely the port was taken meanwhile: try another
	}
	return nil, lastErr
}

func startOn(bin, dir string, port int) (*server, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(bin,
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", dir,
		"--daemonize", "no",
	)
	cmd.Dir = dir
	log := &logbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	srv := &server{addr: addr, cmd: cmd, done: make(chan struct{}), log: log}
	go func() { _ = cmd.Wait(); close(srv.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ping(addr) == nil {
			return srv, nil
		}
		select {
		case <-srv.done:
			return nil, fmt.Errorf("redis-server exited before answering PING on %s:\n%s", addr, log.String())
		default:
		}
		if time.Now().After(deadline) {
			srv.stop()
			return nil, fmt.Errorf("redis-server did not answer PING on %s within 10s:\n%s", addr, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *server) stop() {
	_ = s.cmd.Process.Kill()
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
	}
}

// ping sends an inline PING and expects +PONG.
func ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
