package goplugin

import "syscall"

// childAttrs makes a plugin process die with the portal: go-plugin stops
// its plugins on a clean exit, but a portal killed outright (SIGKILL, a
// crash) would leave them running, orphaned. The kernel sends SIGKILL to
// the child when the thread that started it exits; the Go runtime keeps
// its threads for the life of the process (only a goroutine that exits
// while locked to its thread ends it, and plugins are not started from
// those).
func childAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
