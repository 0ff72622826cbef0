package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/redisync/redisync/replmap"
)

func newSetCmd(g *globals) *cobra.Command {
	var ifVersion uint64
	var file, value string
	cmd := &cobra.Command{
		Use:   "set MAP KEY {VALUE | - | --file PATH | --value VALUE}",
		Short: "Set a key of a replicated map and print its new version",
		Long: `Set KEY of the replicated map MAP to a value and print the key's new version: the seq of the
write in the map's channel. The value is stored as the exact bytes given, from one of:
  VALUE           the argument
  -               standard input, read to its end (a trailing newline is kept: printf '%s' or
                  echo -n to leave it out)
  --file PATH     the file's contents (--file - is standard input too)
  --value VALUE   the argument as it is, for a value that is "-" or starts with "-"
                  (also: set MAP KEY -- -5)
A value may hold up to 1 MiB.

With --if-version V the write applies only if KEY is at version V (0: only if KEY is absent);
otherwise nothing is written and redisync exits with code 3, naming the key and both versions.

A lost connection or a Redis restart is ridden out for up to --timeout, without writing twice.`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := setValue(cmd, args[2:], file, value)
			if err != nil {
				return err
			}
			op := replmap.Op[[]byte]{Key: args[1], Value: v}
			if cmd.Flags().Changed("if-version") {
				op.Guard, op.IfVersion = true, ifVersion
			}
			return writeKey(cmd, g, args[0], op)
		},
	}
	cmd.Flags().Uint64Var(&ifVersion, "if-version", 0, "write only if the key is at this version (0: only if absent); otherwise exit with code 3")
	cmd.Flags().StringVar(&file, "file", "", `read the value from this file ("-": standard input) instead of the VALUE argument`)
	cmd.Flags().StringVar(&value, "value", "", `the value, taken as it is (for "-" or a value that starts with "-") instead of the VALUE argument`)
	return cmd
}

// setValue returns the value of set from its one source: the VALUE argument (arg, empty when
// not given), standard input for "-", the file of --file, or --value.
func setValue(cmd *cobra.Command, arg []string, file, value string) ([]byte, error) {
	sources := len(arg)
	fromFile, literal := cmd.Flags().Changed("file"), cmd.Flags().Changed("value")
	for _, b := range []bool{fromFile, literal} {
		if b {
			sources++
		}
	}
	switch {
	case sources == 0:
		return nil, errors.New("no value: give the VALUE argument, - (standard input), --file PATH or --value VALUE")
	case sources > 1:
		return nil, errors.New("more than one value: give one of VALUE, - (standard input), --file PATH and --value VALUE")
	case literal:
		return []byte(value), nil
	case len(arg) == 1 && arg[0] != "-":
		return []byte(arg[0]), nil
	case len(arg) == 1 || file == "-":
		return readValue(cmd.InOrStdin(), "standard input")
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("--file: %w", err)
	}
	defer f.Close()
	return readValue(f, file)
}

// readValue reads a value from r, named what in errors, up to the largest a map takes.
func readValue(r io.Reader, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, replmap.DefaultMaxValueBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the value from %s: %w", what, err)
	}
	if len(b) > replmap.DefaultMaxValueBytes {
		return nil, fmt.Errorf("the value in %s is over %d bytes (1 MiB), the largest value of a map", what, replmap.DefaultMaxValueBytes)
	}
	return b, nil
}
