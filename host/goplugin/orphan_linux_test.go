package goplugin_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portico-dev/portico/host"
	"github.com/portico-dev/portico/host/goplugin"
	"github.com/portico-dev/portico/host/internal/plugintest"
	"github.com/portico-dev/portico/pdk"
)

// hostEnv makes the test binary a portal stand-in (see TestPluginDiesWithPortal).
const hostEnv = "GOPLUGIN_TEST_HOST"

func init() {
	if path := os.Getenv(hostEnv); path != "" {
		os.Exit(actAsHost(path))
	}
}

// actAsHost starts the plugin at path, prints its private directory and
// waits to be killed.
func actAsHost(path string) int {
	bin, err := os.ReadFile(path)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	p, err := goplugin.Start(context.Background(), goplugin.Config{
		Path: path, SHA256: goplugin.Checksum(bin),
		Host: host.NewServices("test", host.Sandbox{}, host.Deps{KV: host.NewMemoryKV()}),
	})
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	r, err := p.Act(context.Background(), pdk.ActRequest{Action: "environ"})
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	var seen struct {
		Cwd string `json:"cwd"`
	}
	_ = json.Unmarshal(r.Outputs, &seen)
	fmt.Println("cwd:", seen.Cwd)
	select {}
}

// TestPluginDiesWithPortal: a portal killed outright (SIGKILL: no chance
// to stop its plugins) does not leave its plugin processes running.
func TestPluginDiesWithPortal(t *testing.T) {
	path := plugintest.Native(t, "./host/goplugin/testdata/hostile")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), hostEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "cwd: ") {
		t.Fatalf("host said %q, %v", line, err)
	}
	cwd := strings.TrimSpace(strings.TrimPrefix(line, "cwd: "))
	pid := processIn(t, cwd)
	if pid == 0 {
		t.Fatalf("no process runs in the plugin's directory %s", cwd)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	deadline := time.Now().Add(60 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("plugin process %d still runs 60 s after its portal was killed", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processIn finds the process whose working directory is dir.
func processIn(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if wd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd")); err == nil && wd == dir {
			return pid
		}
	}
	return 0
}

// alive reports whether pid runs (a zombie waiting to be reaped does not).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
