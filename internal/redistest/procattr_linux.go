package redistest

import "syscall"

// terminateSignal asks redis-server to shut down gracefully.
var terminateSignal = syscall.SIGTERM

// pauseSignal and resumeSignal stop and continue a process (Pause, Resume).
var pauseSignal, resumeSignal = syscall.SIGSTOP, syscall.SIGCONT

// sysProcAttr makes the kernel kill redis-server if the test binary dies
// without running its cleanups (a panic or a test timeout).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
