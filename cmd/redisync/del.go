package main

import (
	"github.com/spf13/cobra"

	"github.com/redisync/redisync/replmap"
)

func newDelCmd(g *globals) *cobra.Command {
	var ifVersion uint64
	cmd := &cobra.Command{
		Use:   "del MAP KEY",
		Short: "Delete a key of a replicated map and print the seq of the delete",
		Long: `Delete KEY of the replicated map MAP and print the seq of the delete in the map's channel.
Deleting an absent key writes nothing: it says key "KEY" not found and exits 1.

With --if-version V the delete applies only if KEY is at version V (as printed by set, or by
get --json); otherwise nothing is written and redisync exits with code 3, naming the key and
both versions. (--if-version 0 can never apply: an absent key has nothing to delete.)

A lost connection or a Redis restart is ridden out for up to --timeout, without writing twice.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			op := replmap.Op[[]byte]{Key: args[1], Delete: true}
			if cmd.Flags().Changed("if-version") {
				op.Guard, op.IfVersion = true, ifVersion
			}
			return writeKey(cmd, g, args[0], op)
		},
	}
	cmd.Flags().Uint64Var(&ifVersion, "if-version", 0, "delete only if the key is at this version; otherwise exit with code 3")
	return cmd
}
