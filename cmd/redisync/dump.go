package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/redisync/redisync/replmap"
)

func newDumpCmd(g *globals) *cobra.Command {
	var asJSON bool
	var keyPrefix string
	cmd := &cobra.Command{
		Use:   "dump MAP [--key-prefix P]",
		Short: "Print every key of a replicated map, sorted",
		Long: `Load a replica of the replicated map MAP (within --timeout) and print all its keys, sorted
by their bytes; with --key-prefix P, only the keys that start with P (the whole map is
loaded all the same). A map that does not exist (never written to in this --namespace)
exits 1: map "MAP" does not exist; one whose keys were all deleted prints nothing.

Plain output is one line per key: the key, its version and its value, separated by tabs; a
key or value is quoted as a Go string literal when it holds a control character (a tab too),
is not UTF-8, or begins with a double quote.

With --json each line is an object: {"key":"…","value":"…","version":N}; a value that is not
UTF-8 is given base64-encoded with "base64":true.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), g.timeout)
			defer cancel()
			m, closeAll, err := g.openReplica(ctx, args[0], replmap.Config[[]byte]{})
			if err != nil {
				return err
			}
			defer closeAll()
			type kv struct {
				key string
				e   replmap.Entry[[]byte]
			}
			var all []kv
			for k, e := range m.All() {
				if strings.HasPrefix(k, keyPrefix) {
					all = append(all, kv{k, e})
				}
			}
			slices.SortFunc(all, func(a, b kv) int { return strings.Compare(a.key, b.key) })
			out := bufio.NewWriter(cmd.OutOrStdout())
			for _, x := range all {
				if !asJSON {
					fmt.Fprintf(out, "%s\t%d\t%s\n", plainField(x.key), x.e.Version, plainField(string(x.e.Value)))
					continue
				}
				b, err := json.Marshal(newJSONEntry(x.key, x.e.Value, x.e.Version))
				if err != nil {
					return err
				}
				out.Write(b)
				out.WriteByte('\n')
			}
			return out.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per line")
	cmd.Flags().StringVar(&keyPrefix, "key-prefix", "", "print only the keys that start with this (as ?prefix= of the HTTP API)")
	return cmd
}
