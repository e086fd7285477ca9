//go:build !linux

package lowpriority

// lower does nothing where threads have no priority of their own.
func lower() {}
