package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"

	"github.com/spf13/cobra"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/internal/eventjson"
)

func newSubCmd(g *globals) *cobra.Command {
	var from string
	var asJSON bool
	var count uint64
	cmd := &cobra.Command{
		Use:   "sub CHANNEL",
		Short: "Print every message of a channel, in order, until interrupted",
		Long: `Print the messages of CHANNEL, each exactly once and in seq order, across lost connections
and Redis restarts, until interrupted.

--from says where to start: "now" (the default: the messages published from now on), a
position EPOCH:SEQ as printed in "pos" below (the messages after it), or a bare SEQ (the
messages after SEQ in the channel's current epoch; 0 for everything the log still holds).

Once the start is fixed, and before any message, sub prints "subscribed after POS" on
standard error (a bare SEQ with the current epoch): every message published after that line
is printed. A script can wait for the line, then publish.

Plain output is one line per message: the seq, a tab, and the data, quoted as a Go string
literal when it holds a control character (a tab or a newline too), is not UTF-8, or begins
with a double quote: data that begins with a quote is always to be unquoted. A reset
(messages that can no longer be delivered) is reported on standard error:
  reset (REASON): WHAT; continuing after POS

With --json each line is an object:
  {"seq":N,"epoch":"…","pos":"EPOCH:SEQ","entry":"…","time":"…","data":"…"}
where pos is the message's position, which --from accepts to resume after it, and entry the id
of its log entry: --from POS:ENTRY resumes after it too, checking that the log still holds that
message there (a failover may have lost it; the loss is then reported as a reset); data that is not
UTF-8 is given base64-encoded with "base64":true. A reset is an object with a "reset" field:
  {"seq":N,"epoch":"…","pos":"…","reset":{"reason":"trimmed","from":A,"to":B,…}}
where pos is the position it continues after, and "to" is null when the range has no known end
(reason "epoch-changed": every message of the old epoch from A on is lost).

Exit codes: 0 after --count messages; 130 when interrupted (SIGINT, SIGTERM); 1 on an error,
such as a name that is a map (see "redisync watch").`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			start, err := parseFrom(from)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			_, cl, closeAll, err := g.open(ctx)
			if err != nil {
				return err
			}
			defer closeAll()
			after, err := start.fix(ctx, g, cl, args[0], channel.KindChannel)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "subscribed after %s\n", after)
			return printStream(cmd, cl.Events(ctx, args[0], channel.After(after)), count,
				func(out *bufio.Writer, ev channel.Event) (bool, error) {
					return ev.Reset == nil, printEvent(out, cmd.ErrOrStderr(), ev, asJSON)
				})
		},
	}
	cmd.Flags().StringVar(&from, "from", "now", `where to start: "now" (new messages only), or a position EPOCH:SEQ or SEQ to print the messages after it (0 for all the log holds)`)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per line")
	cmd.Flags().Uint64Var(&count, "count", 0, "exit after this many messages (0: run until interrupted)")
	return cmd
}

// startFlag is the value of --from of sub and watch: "now", or a position to start after.
type startFlag struct {
	now bool
	pos channel.Position
}

func parseFrom(s string) (startFlag, error) {
	if s == "now" {
		return startFlag{now: true}, nil
	}
	pos, err := channel.ParsePosition(s)
	if err != nil {
		return startFlag{}, fmt.Errorf("--from %q: want \"now\", a position EPOCH:SEQ or EPOCH:SEQ:ENTRY, or a seq SEQ of the current epoch (0 for the start)", s)
	}
	if pos.Seq > channel.MaxSeq {
		return startFlag{}, fmt.Errorf("--from %q: seq %d is beyond the largest seq a log can hold (%d, 2^53-1)", s, pos.Seq, uint64(channel.MaxSeq))
	}
	return startFlag{pos: pos}, nil
}

// fix returns the position a subscription to name, a name of kind want, starts after, read
// here within --timeout so that the start is known, and can be announced, before the
// subscription runs: for "now" the channel's head, for a bare seq that seq in the current
// epoch (channel.Client.Pin), so that a resume from the announced position after Redis lost
// the log is told so. A name of another kind is a *channel.KindError, found here so that
// nothing is announced.
func (f startFlag) fix(ctx context.Context, g *globals, cl *channel.Client, name string, want channel.Kind) (channel.Position, error) {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	kind, err := cl.Kind(ctx, name)
	if err != nil {
		return channel.Position{}, g.explain(err)
	}
	if kind != "" && kind != want {
		return channel.Position{}, &channel.KindError{Name: name, Kind: kind, Want: want}
	}
	from := channel.After(f.pos)
	if f.now {
		from = channel.FromNow()
	}
	p, err := cl.Pin(ctx, name, from.Of(want))
	if err != nil {
		return channel.Position{}, g.explain(fmt.Errorf("reading the head of %q: %w", name, err))
	}
	return p, nil
}

// resetLine is the line a reset prints on standard error in plain output.
func resetLine(r *channel.Reset, after channel.Position) string {
	what := strings.TrimPrefix(r.String(), string(r.Reason)+": ")
	return fmt.Sprintf("reset (%s): %s; continuing after %s", r.Reason, what, after)
}

func printEvent(out *bufio.Writer, errw io.Writer, ev channel.Event, asJSON bool) error {
	if !asJSON {
		if r := ev.Reset; r != nil {
			out.Flush()
			_, err := fmt.Fprintln(errw, resetLine(r, ev.Position))
			return err
		}
		if _, err := fmt.Fprintf(out, "%d\t%s\n", ev.Seq, plainField(string(ev.Data))); err != nil {
			return err
		}
		return out.Flush()
	}
	j := eventjson.Message(ev)
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	out.Write(b)
	out.WriteByte('\n')
	return out.Flush()
}

// printStream prints the items of a stream with print, which says whether an item counts
// towards count (resets do not), until the stream ends, count items were printed, or the
// command is interrupted (exit code 130).
func printStream[T any](cmd *cobra.Command, items iter.Seq2[T, error], count uint64, print func(*bufio.Writer, T) (bool, error)) error {
	out := bufio.NewWriter(cmd.OutOrStdout())
	defer out.Flush()
	var n uint64
	for item, err := range items {
		if err != nil {
			if errors.Is(err, context.Canceled) && cmd.Context().Err() != nil {
				return &exitCodeError{code: exitInterrupted} // interrupted
			}
			return err
		}
		counts, err := print(out, item)
		if err != nil {
			return err
		}
		if counts {
			n++
		}
		if count > 0 && n >= count {
			return nil
		}
	}
	return nil
}
