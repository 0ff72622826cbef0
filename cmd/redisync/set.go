package main

import (
	"github.com/spf13/cobra"

	"github.com/redisync/redisync/replmap"
)

func newSetCmd(g *globals) *cobra.Command {
	var ifVersion uint64
	cmd := &cobra.Command{
		Use:   "set MAP KEY VALUE",
		Short: "Set a key of a replicated map and print its new version",
		Long: `Set KEY of the replicated map MAP to VALUE (stored as the bytes given) and print the key's
new version: the seq of the write in the map's channel.

With --if-version V the write applies only if KEY is at version V (0: only if KEY is absent);
otherwise nothing is written and redisync exits with code 3, naming the key and both versions.

A lost connection or a Redis restart is ridden out for up to --timeout, without writing twice.`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			op := replmap.Op[[]byte]{Key: args[1], Value: []byte(args[2])}
			if cmd.Flags().Changed("if-version") {
				op.Guard, op.IfVersion = true, ifVersion
			}
			return writeKey(cmd, g, args[0], op)
		},
	}
	cmd.Flags().Uint64Var(&ifVersion, "if-version", 0, "write only if the key is at this version (0: only if absent); otherwise exit with code 3")
	return cmd
}
