package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/redisync/redisync/channel"
)

// interruptGrace is how long an interrupted pub still waits for the batch it has in flight to
// be acknowledged; past it (or at a second signal) the batch is given up and in doubt.
const interruptGrace = 2 * time.Second

// maxMessageLimit is the most --max-message-bytes may allow: a message that fits the default
// batch limit of a publish call, so that subscribers with default settings read it too.
const maxMessageLimit = channel.DefaultMaxBatchBytes

func newPubCmd(g *globals) *cobra.Command {
	var batch, maxBytes int
	cmd := &cobra.Command{
		Use:   "pub CHANNEL [MESSAGE]",
		Short: "Publish a message, or every line of standard input, and print the last seq",
		Long: `Publish MESSAGE on CHANNEL, or, without MESSAGE, every line of standard input as one message
each (in order, in batches). Prints the seq of the last message published.

A line is a message without its end of line ("\n" or "\r\n"); an empty line is an empty
message. A message may hold up to --max-message-bytes bytes (default 1 MiB, at most 4 MiB):
a longer line or MESSAGE stops pub with an error naming it, after the lines before it were
published. A batch holds up to --batch lines and 4 MiB.

A lost connection or a Redis restart is ridden out for up to --timeout per batch, without
losing or repeating a line.

SIGINT (Ctrl-C) or SIGTERM stops reading at once, whether standard input is a terminal, a pipe
or a file. The batch in flight, if any, is given a moment to be acknowledged; then pub prints
the seq of the last message acknowledged, as on success, and on standard error
  interrupted after N lines (M not published)
where N counts the lines read and M those of them not published (read ahead, or in a batch
given up in flight, whose outcome is unknown: a second line says so), and exits with code 130.
A second signal gives up the batch in flight at once.

Redis may lose lines it acknowledged: a failover to a replica that had not received them gives
their seqs to later messages, and a restart without persistence loses the whole log. pub
finds out from the seqs of its later batches; it then says on standard error which lines were
lost (their count and seqs), and exits with code 4 once done, even if interrupted.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case batch < 1:
				return fmt.Errorf("--batch %d is below 1", batch)
			case batch > channel.DefaultMaxBatchMessages:
				return fmt.Errorf("--batch %d is above %d, the most messages one publish call appends", batch, channel.DefaultMaxBatchMessages)
			case maxBytes < 1 || maxBytes > maxMessageLimit:
				return fmt.Errorf("--max-message-bytes %d: want 1 to %d (4 MiB)", maxBytes, maxMessageLimit)
			}
			ctx := cmd.Context()
			_, cl, closeAll, err := g.openConfig(ctx, channel.Config{MaxMessageBytes: maxBytes})
			if err != nil {
				return err
			}
			defer closeAll()
			name := args[0]
			if len(args) == 2 {
				if len(args[1]) > maxBytes {
					return tooLong("MESSAGE", len(args[1]), maxBytes)
				}
				last, err := publish(ctx, g, cl, name, [][]byte{[]byte(args[1])})
				if err != nil {
					if ctx.Err() != nil && isContextErr(err) {
						return &exitCodeError{code: exitInterrupted, msg: "interrupted: the message may or may not have been published"}
					}
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), last.Seq)
				return nil
			}
			rep, err := publishLines(ctx, g, cl, name, cmd.InOrStdin(), batch)
			lost := rep.acks.lossReport()
			if lost != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "redisync:", strings.ReplaceAll(lost, "\n", "\nredisync: "))
			}
			switch {
			case err != nil:
				return err
			case rep.interrupted:
				fmt.Fprintln(cmd.OutOrStdout(), rep.last.Seq)
				fmt.Fprintln(cmd.ErrOrStderr(), rep.summary())
			default:
				fmt.Fprintln(cmd.OutOrStdout(), rep.last.Seq)
			}
			switch {
			case lost != "":
				return &exitCodeError{code: exitLost}
			case rep.interrupted:
				return &exitCodeError{code: exitInterrupted}
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&batch, "batch", 500, "lines published per script call when reading standard input (at most 1000)")
	cmd.Flags().IntVar(&maxBytes, "max-message-bytes", channel.DefaultMaxMessageBytes, "the largest message, in bytes: a longer line or MESSAGE is an error (at most 4194304)")
	return cmd
}

// tooLong is the error of a message over the --max-message-bytes limit: what it is, its size
// (negative: unknown, only known to be over), and how to raise the limit when it can be.
func tooLong(what string, size, limit int) error {
	over := fmt.Sprintf("more than %d bytes", limit)
	if size >= 0 {
		over = fmt.Sprintf("%d bytes", size)
	}
	if limit < maxMessageLimit {
		return fmt.Errorf("%s is %s, over the limit of a message (--max-message-bytes %d): raise it with --max-message-bytes, up to %d (4 MiB)",
			what, over, limit, maxMessageLimit)
	}
	return fmt.Errorf("%s is %s, over %d (4 MiB), the largest message pub publishes", what, over, limit)
}

// publish publishes one batch within --timeout and returns the position of its last message.
// When ctx ends (the first signal), the batch still has interruptGrace to be acknowledged, so
// that one Redis is about to accept does not end in doubt; the second signal ends it at once.
func publish(ctx context.Context, g *globals, cl *channel.Client, name string, msgs [][]byte) (channel.Position, error) {
	bctx, cancel := context.WithTimeout(hardStop(ctx), g.timeout)
	defer cancel()
	defer context.AfterFunc(ctx, func() {
		select {
		case <-time.After(interruptGrace):
			cancel()
		case <-bctx.Done():
		}
	})()
	first, err := cl.PublishBatch(bctx, name, msgs)
	if err != nil {
		return channel.Position{}, g.explain(err)
	}
	first.Seq += uint64(len(msgs)) - 1
	return first, nil
}

// isContextErr says whether err is a context's end rather than an answer from Redis.
func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// pubReport is what publishLines did.
type pubReport struct {
	last        channel.Position // of the last message acknowledged
	read        int              // lines taken from the input
	published   int              // of them, acknowledged by Redis
	inDoubt     int              // of them, in a batch given up on: maybe appended, maybe not
	interrupted bool             // a signal stopped it
	acks        ackLog           // the seqs acknowledged, and those Redis lost afterwards
}

// ackLog remembers the seqs of the lines pub had acknowledged, to tell when Redis lost some of
// them afterwards: a later batch given a seq at or below them (a failover to a replica that
// had not received them), or a new epoch (Redis lost the channel's log).
type ackLog struct {
	epoch  string
	ranges [][2]uint64 // the seqs acknowledged in epoch, ascending and apart; the newest ackRanges
	lost   []lostLines
}

// ackRanges bounds what ackLog remembers; a failover loses the newest writes, not old ones.
const ackRanges = 1024

// lostLines are lines Redis acknowledged and then lost: lines of them, from seq from to to of
// epoch, or every line acknowledged in epoch, from from on, when Redis lost the whole log.
type lostLines struct {
	epoch    string
	from, to uint64
	lines    int
	wholeLog bool
}

// add notes that n lines were acknowledged up to p (p.Seq is the last one's seq).
func (a *ackLog) add(p channel.Position, n int) {
	first, last := p.Seq-uint64(n)+1, p.Seq
	if a.epoch != "" && p.Epoch != a.epoch {
		if l := a.drop(1); l.lines > 0 {
			l.wholeLog = true
			a.lost = append(a.lost, l)
		}
	} else if l := a.drop(first); l.lines > 0 {
		a.lost = append(a.lost, l)
	}
	a.epoch = p.Epoch
	if k := len(a.ranges); k > 0 && a.ranges[k-1][1]+1 == first {
		a.ranges[k-1][1] = last
	} else {
		a.ranges = append(a.ranges, [2]uint64{first, last})
	}
	if len(a.ranges) > ackRanges {
		a.ranges = append(a.ranges[:0], a.ranges[len(a.ranges)-ackRanges:]...)
	}
}

// drop forgets the seqs acknowledged at or above from, and returns them as lost.
func (a *ackLog) drop(from uint64) lostLines {
	l := lostLines{epoch: a.epoch}
	keep := a.ranges[:0]
	for _, r := range a.ranges {
		if r[1] < from {
			keep = append(keep, r)
			continue
		}
		lo := max(r[0], from)
		if l.lines == 0 {
			l.from = lo
		}
		l.lines += int(r[1] - lo + 1)
		l.to = r[1]
		if r[0] < from {
			keep = append(keep, [2]uint64{r[0], from - 1})
		}
	}
	a.ranges = keep
	return l
}

// lossReport is what pub prints on standard error when Redis lost lines it had acknowledged:
// a line each time it happened; "" when it did not.
func (a *ackLog) lossReport() string {
	var b strings.Builder
	for _, l := range a.lost {
		what := fmt.Sprintf("%d lines", l.lines)
		if l.lines == 1 {
			what = "1 line"
		}
		if l.wholeLog {
			fmt.Fprintf(&b, "%s acknowledged in epoch %s (seqs %d to %d) were lost: Redis lost the channel's log (a restart without persistence, a flush); subscribers get an epoch-changed reset\n",
				what, l.epoch, l.from, l.to)
		} else {
			fmt.Fprintf(&b, "%s acknowledged at seqs %d to %d of epoch %s were lost: Redis gave those seqs to later messages (a failover to a replica that had not received them); subscribers get a rewound reset\n",
				what, l.from, l.to, l.epoch)
		}
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// summary is what an interrupted pub prints on standard error: one line, and a second one
// when a batch was given up in flight.
func (r pubReport) summary() string {
	s := fmt.Sprintf("interrupted after %d lines (%d not published)", r.read, r.read-r.published)
	if r.inDoubt > 0 {
		s += fmt.Sprintf("\nthe last %d of them were in a batch given up in flight: Redis may or may not have appended them", r.inDoubt)
	}
	return s
}

// publishLines publishes the lines of r in order, in batches of at most batch lines and of
// the client's MaxBatchBytes; a line over its MaxMessageBytes ends it with an error, once
// the lines before it are published. Lines are read ahead while a batch is in flight, and a
// batch goes out as soon as the previous one is done, so a slow writer's lines are
// published promptly and a fast one's are batched. When ctx ends it stops reading at once
// (the goroutine blocked reading r is left behind; the process is about to exit) and reports
// the lines read but not published.
func publishLines(ctx context.Context, g *globals, cl *channel.Client, name string, r io.Reader, batch int) (pubReport, error) {
	var rep pubReport
	if batch < 1 {
		return rep, fmt.Errorf("--batch %d is below 1", batch)
	}
	cfg := cl.Config()
	lines := make(chan []byte, batch*2)
	readErr := make(chan error, 1)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(r)
		// Room for the longest line allowed, its "\r\n", and one byte to tell it is longer.
		sc.Buffer(make([]byte, 64*1024), cfg.MaxMessageBytes+3)
		n := 0
		for sc.Scan() {
			n++
			if len(sc.Bytes()) > cfg.MaxMessageBytes {
				readErr <- tooLong(fmt.Sprintf("line %d of standard input", n), len(sc.Bytes()), cfg.MaxMessageBytes)
				return
			}
			line := append([]byte(nil), sc.Bytes()...)
			select {
			case lines <- line:
			case <-rctx.Done():
				return
			}
		}
		switch err := sc.Err(); {
		case errors.Is(err, bufio.ErrTooLong):
			readErr <- tooLong(fmt.Sprintf("line %d of standard input", n+1), -1, cfg.MaxMessageBytes)
		case err != nil:
			readErr <- fmt.Errorf("reading line %d of standard input: %w", n+1, err)
		}
	}()
	var carry []byte // a line read that did not fit the previous batch; nil: none
	interrupted := func() (pubReport, error) {
		cancel()
		if carry != nil {
			rep.read++
		}
		for range len(lines) { // the lines read ahead count as read
			if _, ok := <-lines; ok {
				rep.read++
			}
		}
		rep.interrupted = true
		return rep, nil
	}
	for {
		if ctx.Err() != nil {
			return interrupted()
		}
		line, ok := carry, true
		if carry == nil {
			select {
			case line, ok = <-lines:
			case <-ctx.Done():
				return interrupted()
			}
		}
		carry = nil
		if !ok {
			break
		}
		msgs, size := [][]byte{line}, len(line)
	fill:
		for len(msgs) < batch {
			select {
			case l, ok := <-lines:
				if !ok {
					break fill
				}
				if size+len(l) > cfg.MaxBatchBytes {
					carry = l
					break fill
				}
				msgs, size = append(msgs, l), size+len(l)
			default:
				break fill
			}
		}
		rep.read += len(msgs)
		p, err := publish(ctx, g, cl, name, msgs)
		if err != nil {
			if ctx.Err() != nil && isContextErr(err) {
				rep.inDoubt = len(msgs)
				return interrupted()
			}
			return rep, err
		}
		rep.last = p
		rep.published += len(msgs)
		rep.acks.add(p, len(msgs))
	}
	select {
	case err := <-readErr:
		switch rep.published { // every line before the one that failed
		case 0:
		case 1:
			err = fmt.Errorf("%w; the 1 line before it was published, at seq %d", err, rep.last.Seq)
		default:
			err = fmt.Errorf("%w; the %d lines before it were published, the last at seq %d", err, rep.published, rep.last.Seq)
		}
		return rep, err
	default:
		return rep, nil
	}
}
