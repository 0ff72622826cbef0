package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/redisync/redisync/channel"
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

Plain output is one line per message: the seq, a tab, and the data (quoted when it holds a
newline or other control character). A reset (messages that can no longer be delivered) is
reported on standard error.

With --json each line is an object: {"seq":N,"epoch":"…","time":"…","data":"…"}; data that
is not UTF-8 is given base64-encoded with "base64":true. A reset is an object with a "reset"
field: {"seq":N,"epoch":"…","reset":{"reason":"trimmed","from":A,"to":B,…}}.`,
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
			return printStream(cmd, cl.Events(ctx, args[0], start), count,
				func(out *bufio.Writer, ev channel.Event) (bool, error) {
					return ev.Reset == nil, printEvent(out, cmd.ErrOrStderr(), ev, asJSON)
				})
		},
	}
	cmd.Flags().StringVar(&from, "from", "now", `where to start: "now" (new messages only), or a seq N to print the messages after N (0 for all the log holds)`)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per line")
	cmd.Flags().Uint64Var(&count, "count", 0, "exit after this many messages (0: run until interrupted)")
	return cmd
}

func parseFrom(s string) (channel.From, error) {
	if s == "now" {
		return channel.FromNow(), nil
	}
	seq, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return channel.From{}, fmt.Errorf("--from %q: want \"now\" or a seq (a whole number, 0 for the start)", s)
	}
	return channel.After(channel.Position{Seq: seq}), nil
}

type jsonEvent struct {
	Seq    uint64     `json:"seq"`
	Epoch  string     `json:"epoch"`
	Time   string     `json:"time,omitempty"`
	Data   *string    `json:"data,omitempty"`
	Base64 bool       `json:"base64,omitempty"`
	Reset  *jsonReset `json:"reset,omitempty"`
}

type jsonReset struct {
	Reason   string `json:"reason"`
	From     uint64 `json:"from"`
	To       uint64 `json:"to"`
	OldEpoch string `json:"old_epoch,omitempty"`
	NewEpoch string `json:"new_epoch,omitempty"`
}

func printEvent(out *bufio.Writer, errw io.Writer, ev channel.Event, asJSON bool) error {
	if !asJSON {
		if r := ev.Reset; r != nil {
			out.Flush()
			_, err := fmt.Fprintf(errw, "reset (%s): messages %d to %d cannot be delivered; continuing after %s\n", r.Reason, r.From, r.To, ev.Position)
			return err
		}
		data := string(ev.Data)
		if strings.ContainsFunc(data, func(r rune) bool { return r < ' ' && r != '\t' }) {
			data = strconv.Quote(data)
		}
		if _, err := fmt.Fprintf(out, "%d\t%s\n", ev.Seq, data); err != nil {
			return err
		}
		return out.Flush()
	}
	j := jsonEvent{Seq: ev.Seq, Epoch: ev.Epoch}
	if r := ev.Reset; r != nil {
		j.Reset = &jsonReset{Reason: string(r.Reason), From: r.From, To: r.To, OldEpoch: r.OldEpoch, NewEpoch: r.NewEpoch}
	} else {
		j.Time = ev.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00")
		d := string(ev.Data)
		if !utf8.ValidString(d) {
			d = base64.StdEncoding.EncodeToString(ev.Data)
			j.Base64 = true
		}
		j.Data = &d
	}
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
// command is interrupted (which is a success).
func printStream[T any](cmd *cobra.Command, items iter.Seq2[T, error], count uint64, print func(*bufio.Writer, T) (bool, error)) error {
	out := bufio.NewWriter(cmd.OutOrStdout())
	defer out.Flush()
	var n uint64
	for item, err := range items {
		if err != nil {
			if errors.Is(err, context.Canceled) && cmd.Context().Err() != nil {
				return nil // interrupted
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
