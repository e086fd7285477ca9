// Package lowpriority runs background work on an OS thread the kernel
// schedules after everything else of the process: a scan or a backfill
// that keeps a core busy then yields it to request handlers (and to a
// Redis on the same machine) whenever they need it, instead of making
// them wait for their turn.
package lowpriority

import "runtime"

// Nice is the niceness of the thread (0 is normal, 19 the lowest): when
// it competes with a normal thread for a core, the kernel gives it about
// a seventieth of the time. Requests go first; on a machine saturated by
// other work, the background work crawls (measured: nice 10 and 15 let it
// slow writes beside it down more).
const Nice = 19

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
