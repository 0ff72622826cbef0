package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/redisync/redisync/replmap"
)

func newCheckCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "check MAP",
		Short: "Load a replica of a replicated map and check that it agrees with Redis",
		Long: `Load a replica of the replicated map MAP, then compare its digest of (key, version) pairs with
the digest Redis keeps with every write, both taken at the same seq. Prints the position, both
digests and both key counts, and exits 0 only if they match, 1 otherwise. A map that does
not exist (never written to in this --namespace) is no match: it exits 1 with
map "MAP" does not exist, and prints nothing on standard output.

While the replica loads, a progress bar is drawn on standard error when it is a terminal.
Loading and comparing must finish within --timeout.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			ctx, cancel := context.WithTimeout(cmd.Context(), g.timeout)
			defer cancel()
			var cfg replmap.Config[[]byte]
			var bar *progressBar
			if isTerminal(os.Stderr) {
				bar = &progressBar{w: os.Stderr, what: fmt.Sprintf("loading map %q", name)}
				cfg.Progress = bar.update
			}
			m, closeAll, err := g.openReplica(ctx, name, cfg)
			bar.clear()
			if err != nil {
				return err
			}
			defer closeAll()
			v, err := m.Verify(ctx)
			if err != nil {
				return g.explain(err)
			}
			out := cmd.OutOrStdout()
			if v.Position.Epoch == "" {
				fmt.Fprintf(out, "position: seq %d (the map has no history)\n", v.Position.Seq)
			} else {
				fmt.Fprintf(out, "position: seq %d of epoch %s\n", v.Position.Seq, v.Position.Epoch)
			}
			fmt.Fprintf(out, "redis:    digest %s  keys %d\n", v.Redis, v.RedisKeys)
			fmt.Fprintf(out, "replica:  digest %s  keys %d\n", v.Replica, v.ReplicaKeys)
			if !v.Match {
				fmt.Fprintf(out, "MISMATCH: the replica of map %q disagrees with Redis at seq %d\n", name, v.Position.Seq)
				return &exitCodeError{code: 1, msg: fmt.Sprintf("map %q: the replica disagrees with Redis at seq %d", name, v.Position.Seq)}
			}
			fmt.Fprintf(out, "OK: the replica of map %q matches Redis at seq %d\n", name, v.Position.Seq)
			return nil
		},
	}
	return cmd
}

// isTerminal reports whether f is a terminal (a character device).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressBar draws the progress of a snapshot load on one terminal line. A nil *progressBar
// draws nothing.
type progressBar struct {
	w    io.Writer
	what string

	mu    sync.Mutex // guards the fields below
	last  time.Time
	drawn bool
	done  bool
}

const progressEvery = 100 * time.Millisecond

// update draws loaded of total keys, at most every progressEvery; it fits replmap.Config.Progress.
func (b *progressBar) update(loaded, total int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done || (time.Since(b.last) < progressEvery && loaded < total) {
		return
	}
	b.last = time.Now()
	const width = 30
	frac := 1.0
	if total > 0 {
		frac = min(float64(loaded)/float64(total), 1)
	}
	fill := int(frac * width)
	fmt.Fprintf(b.w, "\r%s [%s%s] %3.0f%% %d/%d keys", b.what, strings.Repeat("#", fill), strings.Repeat("-", width-fill), frac*100, loaded, total)
	b.drawn = true
}

// clear erases the bar and stops further drawing.
func (b *progressBar) clear() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drawn {
		fmt.Fprint(b.w, "\r\033[K")
	}
	b.done = true
}
