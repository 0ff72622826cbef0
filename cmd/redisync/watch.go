package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/internal/eventjson"
	"github.com/redisync/redisync/replmap"
)

func newWatchCmd(g *globals) *cobra.Command {
	var from string
	var asJSON bool
	var count uint64
	var keyPrefix string
	cmd := &cobra.Command{
		Use:   "watch MAP [--key-prefix P]",
		Short: "Print every change of a replicated map, in order, until interrupted",
		Long: `Print the changes of the replicated map MAP, each exactly once and in seq order, across lost
connections and Redis restarts, until interrupted. The operations of one atomic write share
their seq. With --key-prefix P, only the changes of keys that start with P are printed (and
counted by --count); resets are always printed, since they may concern any key.

--from says where to start: "now" (the default: the writes made from now on), a position
EPOCH:SEQ as printed in "pos" below (the changes after it), or a bare SEQ (the changes after
SEQ in the map's current epoch; 0 for everything its log still holds).

Once the start is fixed, and before any change, watch prints "subscribed after POS" on
standard error (a bare SEQ with the current epoch): every write made after that line is
printed.

Plain output is one line per change: the seq, the operation ("set" or "del"), the key and the
value (empty for a del), separated by tabs; a key or value is quoted as a Go string literal
when it holds a control character (a tab too), is not UTF-8, or begins with a double quote. A
reset (changes that can no longer be delivered) is reported on standard error:
  reset (REASON): WHAT; continuing after POS

With --json each line is an object:
  {"seq":N,"epoch":"…","pos":"EPOCH:SEQ","entry":"…","op":"set","key":"…","value":"…","version":N,"old_version":N}
where pos is the write's position, which --from accepts to resume after that write (all of its
operations: resume from a pos once every line with it is handled; --from POS:ENTRY also checks
that the log still holds that write there), version is the key's new
version (the seq of the write) and old_version the one it replaced (0: the key was absent); a
del has no "value"; a value that is not UTF-8 is given base64-encoded with "base64":true. A
reset is an object with a "reset" field:
  {"seq":N,"epoch":"…","pos":"…","reset":{"reason":"trimmed","from":A,"to":B,…}}
where pos is the position it continues after, and "to" is null when the range has no known end.

Exit codes: 0 after --count changes; 130 when interrupted (SIGINT, SIGTERM); 1 on an error,
such as a name that is a channel, not a map.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			start, err := parseFrom(from)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			octx, ocancel := context.WithTimeout(ctx, g.timeout)
			_, cl, closeAll, err := g.open(octx)
			ocancel()
			if err != nil {
				return err
			}
			defer closeAll()
			after, err := start.fix(ctx, g, cl, args[0], channel.KindMap)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "subscribed after %s\n", after)
			changes := replmap.Watch[[]byte](ctx, cl, args[0], channel.After(after), replmap.Bytes{})
			return printStream(cmd, changes, count, func(out *bufio.Writer, ch replmap.Change[[]byte]) (bool, error) {
				if ch.Reset == nil && !strings.HasPrefix(ch.Key, keyPrefix) {
					return false, nil
				}
				return ch.Reset == nil, printChange(out, cmd.ErrOrStderr(), ch, asJSON)
			})
		},
	}
	cmd.Flags().StringVar(&from, "from", "now", `where to start: "now" (new changes only), or a position EPOCH:SEQ or SEQ to print the changes after it (0 for all the log holds)`)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per line")
	cmd.Flags().Uint64Var(&count, "count", 0, "exit after this many changes (0: run until interrupted)")
	cmd.Flags().StringVar(&keyPrefix, "key-prefix", "", "print only the changes of keys that start with this (as ?prefix= of the HTTP API)")
	return cmd
}

func opName(deleted bool) string {
	if deleted {
		return "del"
	}
	return "set"
}

func printChange(out *bufio.Writer, errw io.Writer, ch replmap.Change[[]byte], asJSON bool) error {
	if !asJSON {
		if r := ch.Reset; r != nil {
			out.Flush()
			_, err := fmt.Fprintln(errw, resetLine(r, ch.Position))
			return err
		}
		if _, err := fmt.Fprintf(out, "%d\t%s\t%s\t%s\n", ch.Seq, opName(ch.Deleted), plainField(ch.Key), plainField(string(ch.Raw))); err != nil {
			return err
		}
		return out.Flush()
	}
	j := eventjson.ChangeLine(ch)
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	out.Write(b)
	out.WriteByte('\n')
	return out.Flush()
}
