package replmap

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/internal/redistest"
	"github.com/redisync/redisync/redisconn"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// node is one process's view: a channel client and a map replica on it.
type node[V any] struct {
	cl *channel.Client
	m  *Map[V]
}

// newPrefix returns a key prefix of its own for a test.
func newPrefix() string { return "t" + strconv.FormatInt(time.Now().UnixNano(), 36) }

// openNode opens a channel client on url and the map name on it, closed when the test ends.
func openNode[V any](t testing.TB, url, prefix, name string, cfg Config[V]) node[V] {
	t.Helper()
	rc, err := redisconn.Open(context.Background(), redisconn.Options{URL: url, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := channel.New(rc, channel.Config{Prefix: prefix, Logger: quiet, IdleCheck: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	m, err := Open(cl, name, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Close()
		cl.Close()
		rc.Close()
	})
	return node[V]{cl: cl, m: m}
}

func waitReady[V any](t *testing.T, m *Map[V]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := m.WaitReady(ctx); err != nil {
		t.Fatalf("map %s not ready: %v", m.Name(), err)
	}
}

// verify fails unless m's Verify reports a match.
func verify[V any](t *testing.T, m *Map[V]) Verification {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	v, err := m.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Match {
		t.Fatalf("replica differs from Redis: %+v", v)
	}
	return v
}

// contents returns the replica as key -> "version=value".
func contents[V any](m *Map[V]) map[string]string {
	out := map[string]string{}
	for k, e := range m.All() {
		out[k] = strconv.FormatUint(e.Version, 10) + "=" + toString(e.Value)
	}
	return out
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	}
	return ""
}

func startRedis(t *testing.T, opts redistest.Options) *redistest.Server {
	t.Helper()
	return redistest.Start(t, opts)
}

// appendRaw appends data to the channel of map name as another client could, with plain
// commands and no kind check: one message at the next seq, logged and published.
func appendRaw[V any](t testing.TB, n node[V], prefix, name string, data string) uint64 {
	t.Helper()
	ctx := context.Background()
	rc := n.cl.Redis()
	base := prefix + ":{" + name + "}:"
	epoch, err := rc.Do(ctx, rc.B().Hget().Key(base+"meta").Field("epoch").Build()).ToString()
	if err != nil {
		t.Fatal(err)
	}
	seq, err := rc.Do(ctx, rc.B().Hincrby().Key(base+"meta").Field("seq").Increment(1).Build()).AsUint64()
	if err != nil {
		t.Fatal(err)
	}
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	env := "rs1 " + epoch + " " + strconv.FormatUint(seq, 10) + " " + now + " 1 " + strconv.Itoa(len(data)) + "\n" + data
	if err := rc.Do(ctx, rc.B().Xadd().Key(base+"log").Id(strconv.FormatUint(seq, 10)+"-0").FieldValue().
		FieldValue("e", env).FieldValue("t", now).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if err := rc.Do(ctx, rc.B().Publish().Channel(base+"pub").Message(env).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	return seq
}
