//go:build linux

package lowpriority

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestRunLowersOnlyItsThread: fn runs at Nice, the caller's thread keeps
// its priority, and the process's other threads too.
func TestRunLowersOnlyItsThread(t *testing.T) {
	before := niceOf(t, syscall.Gettid())
	var inside, tid int
	Run(func() {
		tid = syscall.Gettid()
		inside = niceOf(t, tid)
	})
	if inside != before+Nice && inside != 19 {
		t.Fatalf("inside Run the thread's nice is %d, want %d", inside, before+Nice)
	}
	if got := niceOf(t, syscall.Gettid()); got != before {
		t.Fatalf("the caller's thread went from nice %d to %d", before, got)
	}
	if tid == syscall.Gettid() {
		t.Fatal("fn ran on the caller's thread")
	}
}

// niceOf reads a thread's nice value from /proc (field 19 of stat).
func niceOf(t *testing.T, tid int) int {
	t.Helper()
	raw, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(tid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	n, err := strconv.Atoi(fields[16])
	if err != nil {
		t.Fatal(err)
	}
	return n
}
