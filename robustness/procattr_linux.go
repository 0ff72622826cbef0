package robustness

import "syscall"

// sysProcAttr makes the kernel kill a node process if the test binary dies without
// closing it (a panic or a test timeout).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
