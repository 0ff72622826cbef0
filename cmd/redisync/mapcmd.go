package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/redisync/redisync/replmap"
	"github.com/spf13/cobra"
)

// exitConflict is the exit code of a write whose --if-version did not match.
const exitConflict = 3

// openMap connects to Redis and opens the map called name with raw byte values. cfg's Codec
// and Logger are set here. closeAll closes the map, then the connection.
func (g *globals) openMap(ctx context.Context, name string, cfg replmap.Config[[]byte]) (m *replmap.Map[[]byte], closeAll func(), err error) {
	_, cl, closeConn, err := g.open(ctx)
	if err != nil {
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
// near-cache of one key, which reads through to Redis.
func (g *globals) openKeys(ctx context.Context, name string) (*replmap.Cache[[]byte], func(), error) {
	_, cl, closeConn, err := g.open(ctx)
	if err != nil {
		return nil, nil, err
	}
	c, err := replmap.OpenCache(ctx, cl, name, replmap.Config[[]byte]{Codec: replmap.Bytes{}, CacheSize: 1, Logger: g.logger(os.Stderr)})
	if err != nil {
		closeConn()
		return nil, nil, g.explain(err)
	}
	return c, func() { c.Close(); closeConn() }, nil
}

// writeKey makes the one write of the set and del commands within --timeout and prints its
// seq (the new version of a set key).
func writeKey(cmd *cobra.Command, g *globals, name string, op replmap.Op[[]byte]) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), g.timeout)
	defer cancel()
	m, closeAll, err := g.openKeys(ctx, name)
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

// ifVersionUsage is the help of --if-version, shared by set and del.
const ifVersionUsage = "write only if the key is at this version (0: only if absent); otherwise exit with code 3"

// explain adds to a deadline error that it was --timeout that ran out.
func (g *globals) explain(err error) error {
	if err != nil && errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w (gave up after --timeout %v)", err, g.timeout)
	}
	return err
}

// jsonValue returns b as a JSON string: as is when it is UTF-8, else base64-encoded with
// isBase64 set.
func jsonValue(b []byte) (s string, isBase64 bool) {
	if utf8.Valid(b) {
		return string(b), false
	}
	return base64.StdEncoding.EncodeToString(b), true
}

// plainField returns s for a tab-separated line: quoted when it holds a control character
// (a tab too, unless last is set, since the last field may hold tabs).
func plainField(s string, last bool) string {
	if strings.ContainsFunc(s, func(r rune) bool { return r < ' ' && (r != '\t' || !last) || r == 0x7f }) {
		return strconv.Quote(s)
	}
	return s
}
