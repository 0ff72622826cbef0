//go:build !linux

package bench

import "syscall"

// serverProcAttr returns nil: only Linux can tie the child's life to ours.
func serverProcAttr() *syscall.SysProcAttr { return nil }
