//go:build !linux

package redistest

import (
	"os"
	"syscall"
)

// terminateSignal asks redis-server to shut down gracefully.
var terminateSignal os.Signal = syscall.SIGTERM

// pauseSignal and resumeSignal stop and continue a process (Pause, Resume).
var pauseSignal, resumeSignal os.Signal = syscall.SIGSTOP, syscall.SIGCONT

// sysProcAttr returns nil: only Linux can tie the child's life to ours.
func sysProcAttr() *syscall.SysProcAttr { return nil }
