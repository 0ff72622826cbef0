package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// onSignals returns two contexts under parent: ctx ends at the first SIGINT or SIGTERM, which
// asks the command to stop taking new work; hard ends at the second, which asks it to give up
// the work it has in flight too. After the second, the signals get their default effect again,
// so a third one kills the process whatever it is doing. stop releases the signals.
func onSignals(parent context.Context) (ctx, hard context.Context, stop func()) {
	ctx, cancel := context.WithCancel(parent)
	hard, cancelHard := context.WithCancel(parent)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		for n := 1; ; n++ {
			select {
			case <-sigs:
			case <-done:
				return
			}
			if n == 1 {
				cancel()
				continue
			}
			cancelHard()
			signal.Reset(os.Interrupt, syscall.SIGTERM)
			return
		}
	}()
	return ctx, hard, func() {
		signal.Stop(sigs)
		close(done)
		cancel()
		cancelHard()
	}
}

type hardStopKey struct{}

// withHardStop attaches hard to ctx, for hardStop.
func withHardStop(ctx, hard context.Context) context.Context {
	return context.WithValue(ctx, hardStopKey{}, hard)
}

// hardStop returns the context that ends when the command must give up the work it has in
// flight: at the second signal. Work that must not be cut short by the first signal (a
// publish whose outcome would become unknown) runs under it. Without one attached (a command
// run in-process) it is ctx itself.
func hardStop(ctx context.Context) context.Context {
	if hard, ok := ctx.Value(hardStopKey{}).(context.Context); ok {
		return hard
	}
	return ctx
}
