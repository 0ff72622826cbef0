package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/replmap"
)

// exitConflict is the exit code of a write whose --if-version did not match.
const exitConflict = 3

// openMap connects to Redis and opens the map called name, which must exist (see
// requireMap), with raw byte values. cfg's Codec and Logger are set here. closeAll closes
// the map, then the connection.
func (g *globals) openMap(ctx context.Context, name string, cfg replmap.Config[[]byte]) (m *replmap.Map[[]byte], closeAll func(), err error) {
	_, cl, closeConn, err := g.open(ctx)
	if err != nil {
		return nil, nil, err
	}
	if err := g.requireMap(ctx, cl, name); err != nil {
		closeConn()
		return nil, nil, err
	}
	cfg.Codec = replmap.Bytes{}
	cfg.Logger = g.logger(os.Stderr)
	m, err = replmap.Open(cl, name, cfg)
	if err != nil {
		closeConn()
		return nil, nil, err
	}
	return m, func() { m.Close(); closeConn() }, nil
}

// openReplica opens the map called name and waits until its replica has loaded.
func (g *globals) openReplica(ctx context.Context, name string, cfg replmap.Config[[]byte]) (*replmap.Map[[]byte], func(), error) {
	m, closeAll, err := g.openMap(ctx, name, cfg)
	if err != nil {
		return nil, nil, err
	}
	if err := m.WaitReady(ctx); err != nil {
		closeAll()
		return nil, nil, g.explain(fmt.Errorf("loading map %q: %w", name, err))
	}
	return m, closeAll, nil
}

// openKeys opens the map called name for single-key reads and writes, loading nothing: a
// near-cache of one key, which reads through to Redis. It returns the channel client too.
func (g *globals) openKeys(ctx context.Context, name string) (*replmap.Cache[[]byte], *channel.Client, func(), error) {
	_, cl, closeConn, err := g.open(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	c, err := replmap.OpenCache(ctx, cl, name, replmap.CacheConfig[[]byte]{Codec: replmap.Bytes{}, Size: 1, Logger: g.logger(os.Stderr)})
	if err != nil {
		closeConn()
		return nil, nil, nil, g.explain(err)
	}
	return c, cl, func() { c.Close(); closeConn() }, nil
}

// requireMap returns nil when name is a map that exists: one that has been written to, even
// if every key was deleted since. A name never written to (no kind stored, no history) is
// an exit-1 error saying the map does not exist, rather than an empty map; a channel is a
// *channel.KindError.
func (g *globals) requireMap(ctx context.Context, cl *channel.Client, name string) error {
	kind, err := cl.Kind(ctx, name)
	switch {
	case err != nil:
		return g.explain(err)
	case kind == channel.KindMap:
		return nil
	case kind != "":
		return &channel.KindError{Name: name, Kind: kind, Want: channel.KindMap}
	}
	// No kind stored: never written, or written before kinds were stored (it has a log then).
	head, err := cl.Head(ctx, name)
	if err != nil {
		return g.explain(fmt.Errorf("reading the head of %q: %w", name, err))
	}
	if head.Epoch != "" || head.Seq != 0 {
		return nil
	}
	return &exitCodeError{code: 1, msg: fmt.Sprintf("map %q does not exist (nothing was ever written to it in namespace %q)", name, g.prefix)}
}

// writeKey makes the one write of the set and del commands within --timeout and prints its
// seq (the new version of a set key).
func writeKey(cmd *cobra.Command, g *globals, name string, op replmap.Op[[]byte]) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), g.timeout)
	defer cancel()
	m, _, closeAll, err := g.openKeys(ctx, name)
	if err != nil {
		return err
	}
	defer closeAll()
	seq, err := mapWrite(ctx, g, m, op)
	if err != nil {
		return err
	}
	fmt.Fprintln(cmd.OutOrStdout(), seq)
	return nil
}

// mapWrite makes one write; a version conflict ends the command with exit code 3, the delete
// of an absent key (which writes nothing) with exit code 1.
func mapWrite(ctx context.Context, g *globals, m *replmap.Cache[[]byte], op replmap.Op[[]byte]) (uint64, error) {
	seq, err := m.Write(ctx, op)
	if op.Delete && errors.Is(err, replmap.ErrNotFound) {
		return 0, &exitCodeError{code: 1, msg: fmt.Sprintf("key %q not found in map %q; nothing was written", op.Key, m.Name())}
	}
	var ce *replmap.ConflictError
	if errors.As(err, &ce) {
		return 0, &exitCodeError{code: exitConflict, msg: fmt.Sprintf("version conflict on key %q of map %q: expected %s, found %s",
			ce.Key, m.Name(), versionText(ce.Expected), versionText(ce.Actual))}
	}
	return seq, g.explain(err)
}

// versionText describes a key's version, 0 meaning absent.
func versionText(v uint64) string {
	if v == 0 {
		return "version 0 (absent)"
	}
	return "version " + strconv.FormatUint(v, 10)
}

// explain adds to a deadline error that it was --timeout that ran out.
func (g *globals) explain(err error) error {
	if err != nil && errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w (gave up after --timeout %v)", err, g.timeout)
	}
	return err
}

// plainField returns s for a line of plain output: as it is, or quoted (strconv.Quote) when it
// holds a control character (a tab too), is not UTF-8, or begins with a double quote, so that
// a field that begins with one is always quoted and reads back exactly (strconv.Unquote).
func plainField(s string) string {
	if strings.HasPrefix(s, `"`) || !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl) {
		return strconv.Quote(s)
	}
	return s
}
