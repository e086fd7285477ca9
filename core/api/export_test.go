package api

import "time"

// SetRunLogsHeartbeat shortens the run log stream's heartbeat for a test
// (not a parallel one) and returns the function that restores it.
func SetRunLogsHeartbeat(d time.Duration) (restore func()) {
	old := runLogsHeartbeat
	runLogsHeartbeat = d
	return func() { runLogsHeartbeat = old }
}
