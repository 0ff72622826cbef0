// Command redisync publishes, subscribes, replicates and checks data kept in sync through Redis.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/redisync/redisync/channel"
)

func main() {
	ctx, hard, stop := onSignals(context.Background())
	err := newRootCmd().ExecuteContext(withHardStop(ctx, hard))
	interrupted := ctx.Err() != nil // before stop, which ends ctx too
	stop()
	os.Exit(exitCode(err, interrupted))
}

// exitInterrupted is the exit code of a command ended by SIGINT or SIGTERM (128 + SIGINT, as
// a shell reports a process killed by Ctrl-C).
const exitInterrupted = 130

// exitLost is the exit code of a pub that found Redis lost lines it had acknowledged.
const exitLost = 4

// exitCode prints err, if any, on standard error and returns the process's exit code.
// interrupted says that a signal cancelled the command's context.
func exitCode(err error, interrupted bool) int {
	if err == nil {
		return 0
	}
	var ec *exitCodeError
	var ke *channel.KindError
	switch {
	case errors.As(err, &ec):
		if ec.msg != "" {
			fmt.Fprintln(os.Stderr, "redisync:", ec.msg)
		}
		return ec.code
	case errors.As(err, &ke):
		fmt.Fprintln(os.Stderr, ke.Error()) // it says "redisync:" itself
		return 1
	case interrupted && errors.Is(err, context.Canceled):
		return exitInterrupted // the interruption itself: nothing to add
	case interrupted:
		fmt.Fprintln(os.Stderr, "redisync:", err)
		return exitInterrupted
	}
	fmt.Fprintln(os.Stderr, "redisync:", err)
	return 1
}

// exitCodeError ends the command with a given exit code.
type exitCodeError struct {
	code int
	msg  string
}

func (e *exitCodeError) Error() string { return e.msg }
