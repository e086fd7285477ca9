package lowpriority

import "syscall"

// lower renices the calling thread (on Linux, setpriority on a thread
// identifier concerns that thread only). A failure leaves it as it was.
func lower() {
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), Nice)
}
