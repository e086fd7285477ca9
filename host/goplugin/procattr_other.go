//go:build !linux

package goplugin

import "syscall"

// childAttrs: elsewhere a plugin process may outlive a portal killed
// outright.
func childAttrs() *syscall.SysProcAttr { return nil }
