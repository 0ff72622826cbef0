package robustness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/internal/wire"
	"github.com/redisync/redisync/redisconn"
	"github.com/redisync/redisync/replmap"
)

// NodeConfig configures one node of a run. A process node receives it as JSON.
type NodeConfig struct {
	Name    string // node name, unique in the run
	Inc     int    // incarnation (process nodes count their restarts from 1)
	Index   int    // the node's number in the run, for the random streams
	URL     string // Redis to dial: the node's own proxy, or a failover deployment's URL
	Sharded bool   // sharded pub/sub (channel.Config.Sharded), on a cluster
	Prefix  string // key prefix of the run
	Map     string // map name
	Chan    string // channel name
	Keys    int    // keys written, "k0".."k<Keys-1>"
	Seed    uint64 // run seed

	Writers     int           // map writer goroutines
	WriteEvery  time.Duration // mean pause between one writer's ops
	PubEvery    time.Duration // mean pause between publishes
	OpTimeout   time.Duration // each op's context
	ConnTimeout time.Duration // redisconn.Options.Timeout
	IdleCheck   time.Duration // channel.Config.IdleCheck

	ProbeEvery time.Duration // mean pause between the starts of two FromNow probes (0: none)
	ProbeLife  time.Duration // mean lifetime of a probe before it drains
	Gateway    bool          // serve the HTTP gateway (node.New) for SSE clients

	CheckRYW  bool             // check read-your-writes (not across a wipe, where Redis may lose a write)
	Failovers bool             // Redis fails over: a write may be lost, and a new replica show older versions
	WatchFrom channel.Position // resume the watch after this position
	SubFrom   channel.Position // resume the subscription after this position
}

// node is one node's workload: a replica with OnChange, a watch, a subscription, writers, a
// publisher, a reader of its own replica, FromNow probes (probe.go) and, on some nodes, the
// HTTP gateway (sse.go). Its history goes to emit.
type node struct {
	cfg  NodeConfig
	emit func(Line) // safe for concurrent use
	log  *slog.Logger

	rc rueidis.Client
	cl *channel.Client
	m  atomic.Pointer[replmap.Map[string]]

	ctx    context.Context // ends the node
	cancel context.CancelFunc
	wg     sync.WaitGroup // streams and the poller

	work     context.Context // ends the workload
	stopWork context.CancelFunc
	workWg   sync.WaitGroup

	gw *gateway // nil unless cfg.Gateway

	ids    atomic.Uint64
	gens   atomic.Int64
	probes atomic.Int64
	obs    atomic.Int64 // version observations checked

	mu       sync.Mutex       // guards the positions below and sub
	watchPos channel.Position // last delivered
	subPos   channel.Position
	sub      *channel.Subscription
	watchErr error // why the watch ended early
}

// startNode connects to Redis (retrying while the proxy is partitioned, until ctx ends),
// opens the replica and starts the streams and the workload.
func startNode(ctx context.Context, cfg NodeConfig, emit func(Line), log *slog.Logger) (*node, error) {
	var rc rueidis.Client
	for attempt := 0; ; attempt++ {
		var err error
		octx, cancel := context.WithTimeout(ctx, 3*cfg.ConnTimeout)
		rc, err = redisconn.Open(octx, redisconn.Options{URL: cfg.URL, Timeout: cfg.ConnTimeout})
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("node %s: connect: %w", cfg.Name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cl, err := channel.New(rc, channel.Config{Prefix: cfg.Prefix, IdleCheck: cfg.IdleCheck, Sharded: cfg.Sharded, Logger: log})
	if err != nil {
		rc.Close()
		return nil, err
	}
	n := &node{cfg: cfg, emit: emit, log: log, rc: rc, cl: cl, watchPos: cfg.WatchFrom, subPos: cfg.SubFrom}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.work, n.stopWork = context.WithCancel(n.ctx)
	if _, err := n.openMap(); err != nil {
		n.Close()
		return nil, err
	}
	sub, err := cl.Subscribe(n.ctx, cfg.Chan, channel.After(cfg.SubFrom), n.onMessage)
	if err != nil {
		n.Close()
		return nil, err
	}
	n.sub = sub
	if cfg.Gateway {
		if n.gw, err = startGateway(cl, cfg, log); err != nil {
			n.Close()
			return nil, err
		}
		n.line(Line{T: LineNote, Kind: NoteGateway, Val: n.gw.addr})
	}
	n.wg.Add(2)
	go n.watch()
	go n.poll()
	for w := range cfg.Writers {
		n.workWg.Add(1)
		go n.writer(w)
	}
	n.workWg.Add(1)
	go n.publisher()
	if cfg.ProbeEvery > 0 {
		n.workWg.Add(1)
		go n.prober()
	}
	return n, nil
}

// openMap opens a new replica (a new OnChange generation) and makes it the node's Map. The
// previous one, if any, is returned to be closed by the caller.
func (n *node) openMap() (old *replmap.Map[string], err error) {
	gen := int(n.gens.Add(1))
	set := make(chan struct{})
	var mp *replmap.Map[string]
	ob := &changeObserver{n: n, gen: gen}
	m, err := replmap.Open(n.cl, n.cfg.Map, replmap.Config[string]{
		Codec:  replmap.String{},
		Logger: n.log,
		OnChange: func(c replmap.Change[string]) {
			<-set // OnChange may come before Open has returned
			ob.onChange(mp, c)
		},
	})
	if err != nil {
		return nil, err
	}
	mp = m
	close(set)
	return n.m.Swap(m), nil
}

// reopenMap replaces the replica by a new one loaded from a fresh snapshot, waiting until it
// is ready (or ctx ends).
func (n *node) reopenMap(ctx context.Context) error {
	old, err := n.openMap()
	if old != nil {
		old.Close()
	}
	if err != nil {
		return err
	}
	return n.m.Load().WaitReady(ctx)
}

func (n *node) now() int64 { return time.Now().UnixNano() }

func (n *node) line(l Line) {
	l.Node, l.Inc = n.cfg.Name, n.cfg.Inc
	if l.At == 0 {
		l.At = n.now()
	}
	n.emit(l)
}

func (n *node) violation(format string, args ...any) {
	n.line(Line{T: LineViolation, Err: fmt.Sprintf(format, args...)})
}

// changeObserver checks one Map's OnChange stream against the replica itself: every change
// announced for a key must be newer than what the replica held for that key when the
// stream (re)started, that is the snapshot. A replica that applies a change its snapshot
// already holds (or an older one) fails it.
type changeObserver struct {
	n       *node
	gen     int
	started bool
	epoch   string
	base    map[string]uint64 // key versions of the snapshot the changes follow
}

func (o *changeObserver) onChange(m *replmap.Map[string], c replmap.Change[string]) {
	l := Line{T: LineEvent, Kind: StreamOnChange, Gen: o.gen, Ver: c.Seq, Epoch: c.Epoch}
	if c.Reset != nil {
		l.Reset = resetInfo(c.Reset)
	} else {
		l.Key, l.Val, l.Del, l.Old = c.Key, c.Value, c.Deleted, c.OldVersion
	}
	o.n.line(l)
	if c.Reset != nil {
		o.started, o.epoch, o.base = true, c.Epoch, versions(m, "")
		return
	}
	if !o.started {
		// The first change of the replica's first snapshot: the replica now holds the
		// snapshot plus this change, so every other key shows its snapshot version.
		o.started, o.epoch, o.base = true, c.Epoch, versions(m, c.Key)
	}
	if o.epoch == "" {
		o.epoch = c.Epoch // the snapshot was of a map without history
	}
	if c.Epoch != o.epoch {
		o.n.violation("onchange gen %d: change of %s at %s in another epoch than %s without a reset", o.gen, c.Key, c.Position, o.epoch)
		o.epoch, o.base = c.Epoch, map[string]uint64{}
	}
	o.n.obs.Add(1)
	if b, ok := o.base[c.Key]; ok && c.Version <= b {
		o.n.violation("onchange gen %d: replica announced version %d of %s after holding version %d (from its snapshot)",
			o.gen, c.Version, c.Key, b)
	}
}

func versions(m *replmap.Map[string], except string) map[string]uint64 {
	out := map[string]uint64{}
	for k, e := range m.All() {
		if k != except {
			out[k] = e.Version
		}
	}
	return out
}

// onMessage records a message or reset of the channel subscription.
func (n *node) onMessage(_ context.Context, ev channel.Event) error {
	l := Line{T: LineEvent, Kind: StreamSub, Ver: ev.Seq, Epoch: ev.Epoch, Entry: ev.Entry}
	if ev.Reset != nil {
		l.Reset = resetInfo(ev.Reset)
	} else {
		l.Val = payloadID(ev.Data)
	}
	n.line(l)
	n.mu.Lock()
	n.subPos = ev.Position
	n.mu.Unlock()
	return nil
}

// watch records the map's Watch until the node closes.
func (n *node) watch() {
	defer n.wg.Done()
	n.mu.Lock()
	from := n.watchPos
	n.mu.Unlock()
	for c, err := range replmap.Watch(n.ctx, n.cl, n.cfg.Map, channel.After(from), replmap.Codec[string](replmap.String{})) {
		if err != nil {
			if n.ctx.Err() == nil {
				n.mu.Lock()
				n.watchErr = err
				n.mu.Unlock()
				n.line(Line{T: LineEvent, Kind: StreamWatch, Err: err.Error()})
			}
			return
		}
		l := Line{T: LineEvent, Kind: StreamWatch, Ver: c.Seq, Epoch: c.Epoch, Entry: c.Entry}
		if c.Reset != nil {
			l.Reset = resetInfo(c.Reset)
		} else {
			l.Key, l.Val, l.Del, l.Old = c.Key, c.Value, c.Deleted, c.OldVersion
		}
		n.line(l)
		n.mu.Lock()
		n.watchPos = c.Position
		n.mu.Unlock()
	}
}

// poll reads the replica every few milliseconds: within an epoch, the version of a key it
// shows never goes down (reads may be stale, never older than an earlier read).
func (n *node) poll() {
	defer n.wg.Done()
	seen := map[string]uint64{}
	epoch := ""
	// A snapshot loaded again after a failover lost writes holds older versions than the
	// replica showed before, in the same epoch: the versions shown start again with each
	// snapshot (and, where Redis fails over, with each new Map).
	var snaps uint64
	var last *replmap.Map[string]
	t := time.NewTicker(15 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		m := n.m.Load()
		for i := range n.cfg.Keys {
			key := keyName(i)
			before, loaded := m.Position(), m.Stats().Snapshots
			_, ver, err := m.Get(key)
			after := m.Position()
			if err != nil || before.Epoch != after.Epoch || m.Stats().Snapshots != loaded {
				continue
			}
			if after.Epoch != epoch || loaded != snaps || (n.cfg.Failovers && m != last) {
				epoch, snaps, last, seen = after.Epoch, loaded, m, map[string]uint64{}
			}
			n.obs.Add(1)
			if ver < seen[key] {
				n.violation("read of the replica: %s went back from version %d to %d in epoch %s", key, seen[key], ver, epoch)
			}
			seen[key] = max(seen[key], ver)
		}
	}
}

func keyName(i int) string { return fmt.Sprintf("k%d", i) }

// pause sleeps about mean (uniformly 0..2×mean), reporting false when ctx ends first.
func pause(ctx context.Context, r *rand.Rand, mean time.Duration) bool {
	return wire.Sleep(ctx, time.Duration(r.Int64N(int64(2*mean)+1)))
}

func (n *node) rand(stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(n.cfg.Seed, uint64(n.cfg.Index)<<32|uint64(n.cfg.Inc)<<16|stream))
}

// writer issues random Set, Delete, CompareAndSet and Redis reads on the keys.
func (n *node) writer(w int) {
	defer n.workWg.Done()
	r := n.rand(uint64(w) + 1)
	for pause(n.work, r, n.cfg.WriteEvery) {
		key := keyName(r.IntN(n.cfg.Keys))
		id := n.ids.Add(1)
		val := fmt.Sprintf("%s.%d.%d", n.cfg.Name, n.cfg.Inc, id)
		switch p := r.IntN(100); {
		case p < 30:
			n.write(w, id, OpSet, key, val, 0)
		case p < 45:
			n.write(w, id, OpDel, key, "", 0)
		case p < 85:
			exp := uint64(0)
			if _, v, err := n.m.Load().Get(key); err == nil {
				exp = v
			}
			if r.IntN(10) == 0 && exp > 0 {
				exp -= uint64(r.IntN(int(exp)) + 1) // a stale guess: a conflict, surely
			}
			n.write(w, id, OpCAS, key, val, exp)
		default:
			n.read(w, id, key)
		}
	}
}

// write runs one map write and records it.
func (n *node) write(w int, id uint64, kind, key, val string, exp uint64) {
	n.line(Line{T: LineCall, ID: id, W: w, Kind: kind, Key: key, Val: val, Exp: exp})
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.OpTimeout)
	defer cancel()
	m := n.m.Load()
	loaded := m.Stats().Snapshots
	var seq uint64
	var err error
	switch kind {
	case OpSet:
		seq, err = m.Set(ctx, key, val)
	case OpDel:
		seq, err = m.Delete(ctx, key)
	case OpCAS:
		seq, err = m.CompareAndSet(ctx, key, val, exp)
	}
	ret := Line{T: LineReturn, ID: id, W: w, Kind: kind, Key: key, Ver: seq}
	var ce *replmap.ConflictError
	switch {
	case err == nil:
		ret.Status = StatusOK
	case errors.As(err, &ce):
		ret.Status, ret.Actual = StatusConflict, ce.Actual
	case kind == OpDel && errors.Is(err, replmap.ErrNotFound):
		ret.Status = StatusAbsent
	default:
		ret.Status, ret.Err = StatusError, err.Error()
	}
	n.line(ret)
	if err == nil && kind != OpDel && n.cfg.CheckRYW && n.m.Load() == m {
		// Read-your-writes: the replica that acknowledged the write holds it or something
		// newer, unless it loaded a snapshot meanwhile (a failover lost writes, this one maybe).
		if _, v, gerr := m.Get(key); gerr == nil && v < seq && m.Stats().Snapshots == loaded {
			n.line(Line{T: LineViolation, Kind: ViolationRYW, ID: id, W: w, Key: key, Ver: seq,
				Err: fmt.Sprintf("read-your-writes: %s written at version %d, the replica then showed version %d", key, seq, v)})
		}
	}
}

// read reads a key from Redis (through the node's proxy): a linearizable read.
func (n *node) read(w int, id uint64, key string) {
	n.line(Line{T: LineCall, ID: id, W: w, Kind: OpRead, Key: key})
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.OpTimeout)
	defer cancel()
	k, err := wire.KeysFor(n.cfg.Prefix, n.cfg.Map)
	if err != nil {
		panic(err) // the suite's own names
	}
	state := k.State
	s, err := n.rc.Do(ctx, n.rc.B().Hget().Key(state).Field(key).Build()).ToString()
	ret := Line{T: LineReturn, ID: id, W: w, Kind: OpRead, Key: key, Status: StatusOK}
	switch {
	case rueidis.IsRedisNil(err):
	case err != nil:
		ret.Status, ret.Err = StatusError, err.Error()
	default:
		st, perr := splitStored(s)
		if perr != nil {
			ret.Status, ret.Err = StatusError, perr.Error()
			n.violation("read of Redis: %v", perr)
		}
		ret.Present, ret.Ver, ret.Val = true, st.Ver, st.Val
	}
	n.line(ret)
}

// publisher publishes unique payloads on the channel.
func (n *node) publisher() {
	defer n.workWg.Done()
	r := n.rand(1000)
	for pause(n.work, r, n.cfg.PubEvery) {
		id := n.ids.Add(1)
		pid := fmt.Sprintf("%s.%d.p%d", n.cfg.Name, n.cfg.Inc, id)
		n.line(Line{T: LineCall, ID: id, W: 99, Kind: OpPub, Val: pid})
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.OpTimeout)
		pos, err := n.cl.Publish(ctx, n.cfg.Chan, []byte(pid+"|"+strings.Repeat("x", r.IntN(64))))
		cancel()
		ret := Line{T: LineReturn, ID: id, W: 99, Kind: OpPub, Val: pid, Status: StatusOK, Ver: pos.Seq, Epoch: pos.Epoch}
		if err != nil {
			ret.Status, ret.Err = StatusError, err.Error()
		}
		n.line(ret)
	}
}

// StopWork stops the workload and waits until every op has returned.
func (n *node) StopWork() {
	n.stopWork()
	n.workWg.Wait()
}

// samePos reports whether a and b name the same seq of the same epoch (the targets are read
// from Redis without the entry ids).
func samePos(a, b channel.Position) bool { return a.Epoch == b.Epoch && a.Seq == b.Seq }

// Converge waits until the replica, the watch and the subscription have reached the targets,
// then verifies the replica against Redis and reports the node's final state.
func (n *node) Converge(ctx context.Context, tg Targets) *Final {
	f := &Final{}
	m := n.m.Load()
	reached := func() bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		return m.Ready() && samePos(m.Position(), tg.Map) && samePos(n.watchPos, tg.Map) && samePos(n.subPos, tg.Chan)
	}
	for !reached() {
		if ctx.Err() != nil {
			n.mu.Lock()
			f.Err = fmt.Sprintf("not converged: replica at %s (ready %v), watch at %s, subscription at %s; targets map %s, channel %s",
				m.Position(), m.Ready(), n.watchPos, n.subPos, tg.Map, tg.Chan)
			if n.watchErr != nil {
				f.Err += "; watch ended: " + n.watchErr.Error()
			}
			if err := n.sub.Err(); err != nil {
				f.Err += "; subscription ended: " + err.Error()
			}
			n.mu.Unlock()
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.Converged = f.Err == ""
	vctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
	v, err := m.Verify(vctx)
	cancel()
	if err != nil {
		f.Verify = err.Error()
	} else {
		f.Verified, f.Match = true, v.Match
		f.Verify = fmt.Sprintf("at %s: Redis %s (%d keys), replica %s (%d keys)", v.Position, v.Redis, v.RedisKeys, v.Replica, v.ReplicaKeys)
	}
	f.Map = m.Position()
	n.mu.Lock()
	f.Watch, f.Sub = n.watchPos, n.subPos
	n.mu.Unlock()
	f.State = map[string]Stored{}
	for k, e := range m.All() {
		f.State[k] = Stored{Ver: e.Version, Val: e.Value}
	}
	f.Obs = int(n.obs.Load())
	f.Retries = n.cl.Stats().PublishRetries
	return f
}

// Close stops everything the node started and closes its clients.
func (n *node) Close() {
	n.stopWork()
	n.workWg.Wait()
	n.cancel()
	n.wg.Wait()
	if n.gw != nil {
		n.gw.close()
	}
	if n.sub != nil {
		n.sub.Close()
	}
	if m := n.m.Load(); m != nil {
		m.Close()
	}
	n.cl.Close()
	n.rc.Close()
}
