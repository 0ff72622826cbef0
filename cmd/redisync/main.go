// Command redisync publishes, subscribes, replicates and checks data kept in sync through Redis.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/redisync/redisync/channel"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		var ec *exitCodeError
		if errors.As(err, &ec) {
			if ec.msg != "" {
				fmt.Fprintln(os.Stderr, "redisync:", ec.msg)
			}
			os.Exit(ec.code)
		}
		var ke *channel.KindError
		if errors.As(err, &ke) {
			fmt.Fprintln(os.Stderr, ke.Error()) // it says "redisync:" itself
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "redisync:", err)
		os.Exit(1)
	}
}

// exitCodeError ends the command with a given exit code.
type exitCodeError struct {
	code int
	msg  string
}

func (e *exitCodeError) Error() string { return e.msg }
