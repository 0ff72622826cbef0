package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/redisync/redisync/channel"
)

func newRetentionCmd(g *globals) *cobra.Command {
	var maxLen int64
	var maxAge time.Duration
	cmd := &cobra.Command{
		Use:   "retention NAME [--max-len N] [--max-age DURATION]",
		Short: "Print or set how much of a channel's or a map's log Redis keeps",
		Long: `Print the retention stored in Redis with the channel NAME, or with the change log of the map
NAME (each write to a map is one message of its log): how many of the newest messages the
log keeps (max-len) and for how long (max-age), "none" meaning no limit, as one line:
  max-len 1000000, max-age none
Every publish or map write trims the log by it, whichever client makes it. A name that has
none stored yet (nothing was ever written to it) says so, and what its first publish will
store. The length is enforced each time the head crosses a multiple of 256 messages, in
whole stream nodes (stream-node-max-entries, 100 entries by default), so a few hundred more
messages may stay; the age, at every publish or write (up to 100 entries at a time).

With --max-len or --max-age, store them (the one not given keeps its stored value) and print
the result in the same form. 0 means no limit. A smaller retention takes effect at the next
publish or write; subscribers and "redisync watch" that had not reached the changes it drops
get a reset ("trimmed"), and map replicas reload from the map's state, which retention does
not touch: a map keeps every key whatever its log's retention.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			setLen, setAge := cmd.Flags().Changed("max-len"), cmd.Flags().Changed("max-age")
			switch {
			case setLen && maxLen < 0:
				return fmt.Errorf("--max-len %d: want a number of messages, or 0 for no limit", maxLen)
			case setAge && maxAge < 0:
				return fmt.Errorf("--max-age %v: want a duration such as 10m or 24h, or 0 for no limit", maxAge)
			case setAge && maxAge > 0 && maxAge < time.Millisecond:
				return fmt.Errorf("--max-age %v: the log's precision is one millisecond", maxAge)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), g.timeout)
			defer cancel()
			_, cl, closeAll, err := g.open(ctx)
			if err != nil {
				return err
			}
			defer closeAll()
			r, stored, err := cl.Retention(ctx, name)
			if err != nil {
				return g.explain(err)
			}
			out := cmd.OutOrStdout()
			if !setLen && !setAge {
				if !stored {
					_, err = fmt.Fprintf(out, "none stored yet; the first publish will store the publisher's settings (redisync pub: %s)\n", firstPublish(cl))
					return err
				}
				_, err = fmt.Fprintln(out, r)
				return err
			}
			if !stored {
				r = firstPublish(cl)
			}
			if setLen {
				r.MaxLen = maxLen
			}
			if setAge {
				r.MaxAge = maxAge
			}
			if err := cl.SetRetention(ctx, name, r); err != nil {
				return g.explain(err)
			}
			_, err = fmt.Fprintln(out, r)
			return err
		},
	}
	cmd.Flags().Int64Var(&maxLen, "max-len", 0, "keep at least this many of the newest messages (0: no limit)")
	cmd.Flags().DurationVar(&maxAge, "max-age", 0, "drop messages older than this, such as 10m or 24h (0: no limit)")
	return cmd
}

// firstPublish is the retention a publish by this command's client stores with a channel that
// has none: its Config's (see channel.Config.MaxLen, MaxAge).
func firstPublish(cl *channel.Client) channel.Retention {
	cfg := cl.Config()
	return channel.Retention{MaxLen: max(cfg.MaxLen, 0), MaxAge: cfg.MaxAge}
}
