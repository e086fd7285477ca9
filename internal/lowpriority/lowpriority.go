// Package lowpriority runs background work on an OS thread the kernel
// schedules after everything else of the process: a scan or a backfill
// that keeps a core busy then yields it to request handlers (and to a
// Redis on the same machine) whenever they need it, instead of making
// them wait for their turn.
package lowpriority

import "runtime"

// Nice is the niceness of the thread (0 is normal, 19 the lowest). At 10
// the kernel gives it about a tenth of what a normal thread gets when they
// compete: requests go first, yet on a saturated machine the work still
// advances (at 19, a fiftieth: a backfill could stall for minutes).
const Nice = 10

// Run calls fn on a fresh OS thread at Nice and waits for it. The thread
// is never reused: its goroutine ends locked to it, so the runtime
// discards it rather than run other goroutines at its priority.
func Run(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread ends with fn
		lower()
		fn()
	}()
	<-done
}
