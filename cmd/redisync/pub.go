package main

import (
	"bufio"
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/redisync/redisync/channel"
)

func newPubCmd(g *globals) *cobra.Command {
	var batch int
	cmd := &cobra.Command{
		Use:   "pub CHANNEL [MESSAGE]",
		Short: "Publish a message, or every line of standard input, and print the last seq",
		Long: `Publish MESSAGE on CHANNEL, or, without MESSAGE, every line of standard input as one message
each (in order, in batches). Prints the seq of the last message published.

A lost connection or a Redis restart is ridden out for up to --timeout per batch, without
losing or repeating a line.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			_, cl, closeAll, err := g.open(ctx)
			if err != nil {
				return err
			}
			defer closeAll()
			name := args[0]
			var last channel.Position
			if len(args) == 2 {
				last, err = publish(ctx, g, cl, name, [][]byte{[]byte(args[1])})
			} else {
				last, err = publishLines(ctx, g, cl, name, cmd.InOrStdin(), batch)
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), last.Seq)
			return nil
		},
	}
	cmd.Flags().IntVar(&batch, "batch", 500, "lines published per script call when reading standard input")
	return cmd
}

// publish publishes one batch within --timeout and returns the position of its last message.
func publish(ctx context.Context, g *globals, cl *channel.Client, name string, msgs [][]byte) (channel.Position, error) {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	first, err := cl.PublishBatch(ctx, name, msgs)
	if err != nil {
		return channel.Position{}, err
	}
	first.Seq += uint64(len(msgs)) - 1
	return first, nil
}

// publishLines publishes the lines of r in order. Lines are read ahead while a batch is in
// flight, and a batch goes out as soon as the previous one is done, so a slow writer's lines
// are published promptly and a fast one's are batched.
func publishLines(ctx context.Context, g *globals, cl *channel.Client, name string, r io.Reader, batch int) (channel.Position, error) {
	if batch < 1 {
		return channel.Position{}, fmt.Errorf("--batch %d is below 1", batch)
	}
	lines := make(chan []byte, batch*2)
	readErr := make(chan error, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64*1024), channel.DefaultMaxMessageBytes+1)
		n := 0
		for sc.Scan() {
			n++
			line := append([]byte(nil), sc.Bytes()...)
			select {
			case lines <- line:
			case <-ctx.Done():
				return
			}
		}
		if err := sc.Err(); err != nil {
			readErr <- fmt.Errorf("reading line %d of standard input: %w", n+1, err)
		}
	}()
	var last channel.Position
	for {
		line, ok := <-lines
		if !ok {
			break
		}
		msgs := [][]byte{line}
	fill:
		for len(msgs) < batch {
			select {
			case l, ok := <-lines:
				if !ok {
					break fill
				}
				msgs = append(msgs, l)
			default:
				break fill
			}
		}
		p, err := publish(ctx, g, cl, name, msgs)
		if err != nil {
			return last, err
		}
		last = p
	}
	select {
	case err := <-readErr:
		return last, err
	default:
		return last, nil
	}
}
