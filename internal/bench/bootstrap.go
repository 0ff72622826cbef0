package bench

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/redisync/redisync/internal/bench/mapfill"
	"github.com/redisync/redisync/replmap"
)

// Targets of the bootstrap scenario, set for a map of TargetBootstrapKeys keys: a new node
// loads it in under TargetBootstrapSeconds and holds it in at most TargetHeapFactor times the
// raw key and value bytes plus TargetHeapOverhead bytes per key.
const (
	TargetBootstrapKeys    = 1_000_000
	TargetBootstrapSeconds = 3.0
	TargetHeapFactor       = 2
	TargetHeapOverhead     = 64
)

// BaselinePlainScan is the Baseline of the bootstrap scenario.
const BaselinePlainScan = "plain HSCAN"

// loadTimeout bounds a load, or a wait for a replica to catch up, in the bootstrap and get
// scenarios.
const loadTimeout = 5 * time.Minute

// runBootstrap writes a map of Config.BootstrapKeys keys straight into Redis (mapfill), starts
// another node writing to it at Config.BootstrapWrites writes/s, and loads it twice, each time
// after a GC, timing the load and reading the live heap it added (after another GC):
//
//   - raw: a plain HSCAN loop (COUNT replmap.DefaultScanCount) into a map[string]string of the
//     stored fields, on a Redis client opened the same way;
//   - redisync: replmap.Open on a channel client of its own, until WaitReady; the replica uses
//     the String codec.
//
// Then the writer stops, the replica waits for its last write, and the bench compares it with
// the map in Redis key by key (a key that differs is counted as lost).
func runBootstrap(ctx context.Context, r *Runner, res *Result) (err error) {
	n := r.cfg.BootstrapKeys
	name := res.Scenario + "-redisync"
	keyBytes := float64(keyBytesTotal(n)) / float64(n)
	res.Baseline = BaselinePlainScan
	res.Params = Params{Keys: n, KeyBytes: int(keyBytes + 0.5), ValueBytes: BootstrapValueBytes, WriteRate: r.cfg.BootstrapWrites}
	defer func() {
		if derr := r.deleteChannel(context.WithoutCancel(ctx), name); err == nil {
			err = derr
		}
	}()
	var rcs []rueidis.Client
	defer func() {
		for _, rc := range rcs {
			rc.Close()
		}
	}()

	r.progress("%s: writing %s keys of %d bytes into Redis…", res.Scenario, thousands(float64(n)), BootstrapValueBytes)
	if err := mapfill.Fill(ctx, r.admin, mapfill.Options{Prefix: r.prefix, Name: name, Keys: n, ValueBytes: BootstrapValueBytes}); err != nil {
		return err
	}
	state := mustKeys(r.prefix, name).State

	// The writer is a near-cache of one key: it holds no replica to weigh on the heap figures.
	wcl, err := r.openChannel(ctx, &rcs)
	if err != nil {
		return err
	}
	defer wcl.Close()
	w, err := replmap.OpenCache(ctx, wcl, name, replmap.CacheConfig[string]{Codec: replmap.String{}, Size: 1, Logger: r.cfg.Logger})
	if err != nil {
		return err
	}
	defer w.Close()
	wr := startWriter(ctx, w, n, r.cfg.BootstrapWrites)
	defer wr.stop()

	rc, err := r.openRedis(ctx)
	if err != nil {
		return err
	}
	rcs = append(rcs, rc)
	r.progress("%s: raw: HSCAN of %s keys into a Go map…", res.Scenario, thousands(float64(n)))
	raw, err := r.measureLoad(ctx, "raw", name, &wr.writes, func(ctx context.Context) (int, any, error) {
		m, err := plainScan(ctx, rc, state)
		return len(m), m, err
	})
	if err != nil {
		return fmt.Errorf("raw: %w", err)
	}

	cl, err := r.openChannel(ctx, &rcs)
	if err != nil {
		return err
	}
	defer cl.Close()
	var m *replmap.Map[string]
	defer func() {
		if m != nil {
			m.Close()
		}
	}()
	r.progress("%s: redisync: a new replica loading %s keys…", res.Scenario, thousands(float64(n)))
	rs, err := r.measureLoad(ctx, "redisync", name, &wr.writes, func(ctx context.Context) (int, any, error) {
		if m, err = replmap.Open(cl, name, replmap.Config[string]{Codec: replmap.String{}, Logger: r.cfg.Logger}); err != nil {
			return 0, nil, err
		}
		if err := m.WaitReady(ctx); err != nil {
			return 0, nil, fmt.Errorf("waiting for the replica: %w", err)
		}
		return m.Len(), m, nil
	})
	if err != nil {
		return fmt.Errorf("redisync: %w", err)
	}

	writes, werr := wr.stop()
	if werr != nil {
		return fmt.Errorf("the writing node: %w", werr)
	}
	head, err := cl.Head(ctx, name) // the last write, whether or not its reply reached the writer
	if err != nil {
		return err
	}
	r.progress("%s: %s writes meanwhile; checking the replica against Redis key by key…", res.Scenario, thousands(float64(writes)))
	if rs.Lost, err = r.compareReplica(ctx, m, rc, state, head.Seq); err != nil {
		return err
	}
	st := m.Stats()
	rs.Stats = map[string]uint64{"snapshots": st.Snapshots, "resnapshots": st.Resnapshots, "changes": st.Changes}
	res.Sides = []Side{rs, raw}

	rawPerKey := keyBytes + BootstrapValueBytes
	timeRow := compareRow("load time", 0, "s", rs.Seconds, raw.Seconds)
	heapRow := compareRow("heap per key", 0, "B", float64(rs.HeapBytes)/float64(n), float64(raw.HeapBytes)/float64(n))
	if n >= TargetBootstrapKeys {
		limit := TargetHeapFactor*rawPerKey + TargetHeapOverhead
		timeRow = timeRow.below(TargetBootstrapSeconds, false, fmt.Sprintf("< %g s", TargetBootstrapSeconds), rs)
		heapRow = heapRow.below(limit, true, fmt.Sprintf("≤ %.0f B (%d × %.0f + %d)", limit, TargetHeapFactor, rawPerKey, TargetHeapOverhead), rs)
	}
	res.Rows = []Row{timeRow, heapRow}
	return nil
}

// measureLoad times load, which loads a map and returns its keys and what holds them, and
// reads the live heap it added: a GC before, another after with what load returned still held.
func (r *Runner) measureLoad(ctx context.Context, system, name string, writes *atomic.Int64,
	load func(context.Context) (keys int, held any, err error)) (Side, error) {
	ctx, cancel := context.WithTimeout(ctx, loadTimeout)
	defer cancel()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ub, err := r.usage(ctx)
	if err != nil {
		return Side{}, fmt.Errorf("INFO: %w", err)
	}
	stopProfile, err := r.startProfile(name + "-" + system)
	if err != nil {
		return Side{}, err
	}
	w0 := writes.Load()
	start := time.Now()
	keys, held, err := load(ctx)
	took := time.Since(start)
	w1 := writes.Load()
	if perr := stopProfile(); err == nil {
		err = perr
	}
	if err != nil {
		return Side{}, err
	}
	ua, err := r.usage(ctx)
	if err != nil {
		return Side{}, fmt.Errorf("INFO: %w", err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(held)
	s := Side{System: system, Keys: int64(keys), Published: int64(keys), Delivered: []int64{int64(keys)},
		HeapBytes: int64(after.HeapAlloc) - int64(before.HeapAlloc), WritesDuring: w1 - w0, Seconds: took.Seconds()}
	if s.Seconds > 0 {
		s.Throughput = float64(keys) / s.Seconds
	}
	client, redis, commands := ua.since(ub)
	s.ClientCPUSeconds, s.RedisCPUSeconds, s.Commands = client.Seconds(), redis.Seconds(), commands
	return s, nil
}

// compareReplica waits until m has applied seq, then reads the map's state from Redis and
// returns the number of keys on which m differs from it: missing, extra, or at another version
// or value.
func (r *Runner) compareReplica(ctx context.Context, m *replmap.Map[string], rc rueidis.Client, state string, seq uint64) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, loadTimeout)
	defer cancel()
	if err := m.WaitFor(ctx, seq); err != nil {
		return 0, fmt.Errorf("waiting for the replica to apply seq %d: %w", seq, err)
	}
	want, err := plainScan(ctx, rc, state)
	if err != nil {
		return 0, err
	}
	var diff int64
	for k, stored := range want {
		ver, val, _ := strings.Cut(stored, ":")
		got, gotVer, err := m.Get(k)
		if err != nil || got != val || strconv.FormatUint(gotVer, 10) != ver {
			diff++
		}
	}
	return diff + int64(max(0, m.Len()-len(want))), nil
}

// plainScan reads a hash with HSCAN, COUNT replmap.DefaultScanCount, into a Go map, as an
// application without redisync would load it.
func plainScan(ctx context.Context, rc rueidis.Client, key string) (map[string]string, error) {
	n, err := rc.Do(ctx, rc.B().Hlen().Key(key).Build()).AsInt64()
	if err != nil {
		return nil, fmt.Errorf("HLEN %s: %w", key, err)
	}
	m := make(map[string]string, n)
	for cursor := uint64(0); ; {
		e, err := rc.Do(ctx, rc.B().Hscan().Key(key).Cursor(cursor).Count(replmap.DefaultScanCount).Build()).AsScanEntry()
		if err != nil {
			return nil, fmt.Errorf("HSCAN %s: %w", key, err)
		}
		for i := 0; i+1 < len(e.Elements); i += 2 {
			m[e.Elements[i]] = e.Elements[i+1]
		}
		if cursor = e.Cursor; cursor == 0 {
			return m, nil
		}
	}
}

// keyBytesTotal returns the bytes of the names of keys mapfill.Key(0) to mapfill.Key(n-1).
func keyBytesTotal(n int) int {
	total := 0
	for lo, hi := 0, 10_000_000; lo < n; lo, hi = hi, hi*10 {
		total += (min(hi, n) - lo) * len(mapfill.Key(lo)) // every key of [lo, hi) is as long
	}
	return total
}

// writer is a node writing to a map at a steady rate, one Set at a time, each to the next key
// of a walk through the map's keys.
type writer struct {
	writes atomic.Int64
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
	err    error // the write that failed, stopping the writer early; set before done closes
}

func startWriter(ctx context.Context, c *replmap.Cache[string], keys, rate int) *writer {
	ctx, cancel := context.WithCancel(ctx)
	w := &writer{cancel: cancel, done: make(chan struct{})}
	value := strings.Repeat("w", BootstrapValueBytes)
	interval := time.Duration(float64(time.Second) / float64(rate))
	go func() {
		defer close(w.done)
		t := time.NewTimer(0)
		defer t.Stop()
		// A write that took longer than the interval delays the next ones: the writer never
		// catches up in a burst, so no load sees more than rate writes/s.
		next := time.Now()
		for i := 0; ; i, next = i+1, later(next.Add(interval), time.Now()) {
			if d := time.Until(next); d > 0 {
				t.Reset(d)
				select {
				case <-t.C:
				case <-ctx.Done():
					return
				}
			}
			_, err := c.Set(ctx, mapfill.Key(i*7919%keys), value)
			if ctx.Err() != nil {
				return // stopped: that write may or may not have happened
			}
			if err != nil {
				w.err = err
				return
			}
			w.writes.Add(1)
		}
	}()
	return w
}

// later returns the later of two times.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// stop stops the writer and returns the number of writes it made and the error that stopped
// it early. It is idempotent.
func (w *writer) stop() (writes int64, err error) {
	w.once.Do(w.cancel)
	<-w.done
	return w.writes.Load(), w.err
}
