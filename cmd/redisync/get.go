package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/redisync/redisync/internal/eventjson"
	"github.com/redisync/redisync/replmap"
)

// jsonEntry is a key of a map as printed by get --json and dump --json.
type jsonEntry struct {
	Key     string `json:"key"`
	Value   string `json:"value"`
	Base64  bool   `json:"base64,omitempty"`
	Version uint64 `json:"version"`
}

func newJSONEntry(key string, value []byte, version uint64) jsonEntry {
	e := jsonEntry{Key: key, Version: version}
	e.Value, e.Base64 = eventjson.Value(value)
	return e
}

func newGetCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "get MAP KEY",
		Short: "Print the value of a key of a replicated map",
		Long: `Print the value of KEY in the replicated map MAP, as stored, followed by a newline.
It reads the key from Redis (the map's state, which every write updates) within --timeout,
without loading a replica of the map: "redisync dump" loads one.

With --json it prints {"key":"…","value":"…","version":N}; a value that is not UTF-8 is given
base64-encoded with "base64":true.

An absent key prints nothing on standard output, says so on standard error, and exits 1,
adding when the map itself does not exist (nothing was ever written to it in this
--namespace): key "KEY" not found: map "MAP" does not exist (…).`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, key := args[0], args[1]
			ctx, cancel := context.WithTimeout(cmd.Context(), g.timeout)
			defer cancel()
			m, cl, closeAll, err := g.openKeys(ctx, name)
			if err != nil {
				return err
			}
			defer closeAll()
			v, ver, err := m.Get(ctx, key)
			if errors.Is(err, replmap.ErrNotFound) {
				var ec *exitCodeError
				if err := g.requireMap(ctx, cl, name); errors.As(err, &ec) {
					ec.msg = fmt.Sprintf("key %q not found: %s", key, ec.msg)
					return ec
				} else if err != nil {
					return err
				}
				return &exitCodeError{code: 1, msg: fmt.Sprintf("key %q not found in map %q", key, name)}
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if !asJSON {
				_, err := out.Write(append(v[:len(v):len(v)], '\n'))
				return err
			}
			b, err := json.Marshal(newJSONEntry(key, v, ver))
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(out, "%s\n", b)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"key":…,"value":…,"version":N}`)
	return cmd
}
