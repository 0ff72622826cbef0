package bench

import "syscall"

// serverProcAttr makes the kernel kill redis-server if the bench dies without closing it.
func serverProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
