package robustness

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/internal/faultproxy"
	"github.com/redisync/redisync/internal/redistest"
	"github.com/redisync/redisync/internal/wire"
	"github.com/redisync/redisync/redisconn"
)

// Scenarios.
const (
	// ScenarioAOF runs Redis with "appendonly yes, appendfsync always": nothing acknowledged
	// may be lost, and no stream may ever see a reset.
	ScenarioAOF = "aof"
	// ScenarioWipe runs Redis without persistence and restarts it: data loss is legitimate
	// and must surface as an epoch-changed reset on every stream and replica; writes
	// acknowledged after the restart must survive.
	ScenarioWipe = "wipe"
	// ScenarioSentinel and ScenarioCluster (failover.go) run on a Sentinel set and a Redis
	// Cluster, with failovers among the faults.
)

// RunConfig describes one run.
type RunConfig struct {
	Seed     uint64
	Scenario string
	Faults   time.Duration // how long faults are injected
	Rounds   int           // when > 0, stop once every fault kind was injected that many times
	Quiet    time.Duration // fault-free workload after them, before the stop

	InProcess            int // nodes in this process
	Processes            int // nodes in child processes
	Keys                 int
	Writers              int
	WriteEvery, PubEvery time.Duration
	OpTimeout            time.Duration
	ConvergeTimeout      time.Duration
	LinearizeTimeout     time.Duration
	ProbeEvery           time.Duration // per node, mean pause between two FromNow probes
	ProbeLife            time.Duration // mean lifetime of a probe
	SSEChan, SSEMap      int           // SSE clients of the channel and of the map
	OutDir               string        // where a failed run's logs and visualization stay
}

// DefaultRunConfig returns the settings of a run of seed.
func DefaultRunConfig(seed uint64, faults time.Duration) RunConfig {
	sc := ScenarioAOF
	if seed%3 == 2 {
		sc = ScenarioWipe
	}
	return RunConfig{
		Seed: seed, Scenario: sc, Faults: faults, Quiet: 2 * time.Second,
		InProcess: 3, Processes: 1, Keys: 8, Writers: 2,
		WriteEvery: 60 * time.Millisecond, PubEvery: 50 * time.Millisecond,
		OpTimeout: 10 * time.Second, ConvergeTimeout: 30 * time.Second, LinearizeTimeout: 60 * time.Second,
		ProbeEvery: 500 * time.Millisecond, ProbeLife: 800 * time.Millisecond, SSEChan: 2, SSEMap: 1,
	}
}

// RunConfigFor returns the settings of a run of seed on deployment deploy: DefaultRunConfig's
// for the single server (aof or wipe by seed), the same with the deployment's scenario for
// the others.
func RunConfigFor(deploy string, seed uint64, faults time.Duration) RunConfig {
	cfg := DefaultRunConfig(seed, faults)
	if deploy != DeploySingle {
		cfg.Scenario = deploy
	}
	return cfg
}

// history collects every node's lines.
type history struct {
	mu    sync.Mutex // guards lines
	lines []Line
}

func (h *history) add(l Line) {
	h.mu.Lock()
	h.lines = append(h.lines, l)
	h.mu.Unlock()
}

func (h *history) snapshot() []Line {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Line(nil), h.lines...)
}

// inNode is a node running in the test process.
type inNode struct {
	name  string
	proxy *faultproxy.Proxy
	n     *node
}

// faultRecord is one injected fault, with its times relative to the run's start.
type faultRecord struct {
	Kind   string
	Target string
	Start  time.Duration
	End    time.Duration
	Detail string
}

// wipeWindow is a restart without persistence: Redis lost everything between KillStart
// and RestartDone (Unix ns).
type wipeWindow struct {
	KillStart, RestartDone int64
}

// cluster is one run's Redis, proxies, nodes and fault injector.
type cluster struct {
	t      *testing.T
	cfg    RunConfig
	rnd    *rand.Rand          // the fault schedule
	srv    *redistest.Server   // the single server; nil on a failover deployment
	sen    *redistest.Sentinel // the Sentinel set of ScenarioSentinel
	rcl    *redistest.Cluster  // the Redis Cluster of ScenarioCluster
	shard  bool                // the clients use sharded pub/sub (a cluster)
	hist   *history
	start  time.Time
	dir    string
	prefix string
	log    *slog.Logger
	logf   *os.File

	in    []*inNode
	procs []*procNode

	sse       []*sseClient
	sseCancel context.CancelFunc
	sseWg     sync.WaitGroup

	injRC rueidis.Client
	inj   *channel.Client
	injID uint64

	faults    []faultRecord
	wipes     []wipeWindow
	failovers []failoverWindow
	watch     *roleWatcher // failover deployments: records the failovers nobody injected
	closed    bool         // closeAll ran
}

const (
	mapName  = "m"
	chanName = "events"
)

func newCluster(t *testing.T, cfg RunConfig) *cluster {
	t.Helper()
	dir := cfg.OutDir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", fmt.Sprintf("redisync-robust-%d-*", cfg.Seed)); err != nil {
			t.Fatal(err)
		}
	}
	logf, err := os.Create(filepath.Join(dir, "nodes.log"))
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{
		t: t, cfg: cfg, rnd: rand.New(rand.NewPCG(cfg.Seed, 0xfa417)),
		hist: &history{}, dir: dir, logf: logf,
		prefix: fmt.Sprintf("rb%d", cfg.Seed),
		log:    slog.New(slog.NewTextHandler(logf, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	c.startDeployment()
	c.start = time.Now()
	c.injRC, err = redisconn.Open(context.Background(), redisconn.Options{URL: c.redisURL(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c.shard = redisconn.IsCluster(c.injRC)
	if c.inj, err = channel.New(c.injRC, channel.Config{Prefix: c.prefix, Sharded: c.shard, Logger: c.log}); err != nil {
		t.Fatal(err)
	}
	return c
}

// nodeConfig returns the configuration of a node that dials addr (its proxy), or the
// deployment's URL when addr is empty.
func (c *cluster) nodeConfig(name string, index int, addr string) NodeConfig {
	url := "redis://" + addr
	if addr == "" {
		url = c.redisURL()
	}
	return NodeConfig{
		Name: name, Index: index, URL: url, Sharded: c.shard, Prefix: c.prefix, Map: mapName, Chan: chanName,
		Keys: c.cfg.Keys, Seed: c.cfg.Seed, Writers: c.cfg.Writers,
		WriteEvery: c.cfg.WriteEvery, PubEvery: c.cfg.PubEvery, OpTimeout: c.cfg.OpTimeout,
		ConnTimeout: time.Second, IdleCheck: 200 * time.Millisecond,
		ProbeEvery: c.cfg.ProbeEvery, ProbeLife: c.cfg.ProbeLife,
		Gateway: index == 0 || index >= c.cfg.InProcess, // the first in-process node and the node processes
		// Read-your-writes is checked where Redis keeps what it acknowledged; a failover may
		// lose a write, but the replica then reloads, which the check allows for.
		CheckRYW:  c.cfg.Scenario != ScenarioWipe,
		Failovers: isFailoverScenario(c.cfg.Scenario),
	}
}

// newProxy returns a proxy to the single server, or nil on a failover deployment, where
// the nodes dial the deployment itself.
func (c *cluster) newProxy() (*faultproxy.Proxy, string) {
	if c.srv == nil {
		return nil, ""
	}
	px, err := faultproxy.New(c.srv.Addr())
	if err != nil {
		c.t.Fatal(err)
	}
	return px, px.Addr()
}

// startNodes starts every node, each behind a proxy of its own on the single server.
func (c *cluster) startNodes() {
	t := c.t
	for i := range c.cfg.InProcess {
		px, addr := c.newProxy()
		name := fmt.Sprintf("n%d", i+1)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		n, err := startNode(ctx, c.nodeConfig(name, i, addr), c.hist.add, c.log.With("node", name))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		c.in = append(c.in, &inNode{name: name, proxy: px, n: n})
	}
	for i := range c.cfg.Processes {
		px, addr := c.newProxy()
		name := fmt.Sprintf("p%d", i+1)
		p := &procNode{name: name, index: c.cfg.InProcess + i, proxy: px, hist: c.hist, dir: c.dir}
		p.base = c.nodeConfig(name, p.index, addr)
		if err := p.start(); err != nil {
			t.Fatal(err)
		}
		c.procs = append(c.procs, p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.sseCancel = cancel
	for i := range c.cfg.SSEChan + c.cfg.SSEMap {
		kind, path := StreamSSEChan, "/v1/channels/"+chanName+"/events"
		if i >= c.cfg.SSEChan {
			kind, path = StreamSSEMap, "/v1/maps/"+mapName+"/watch"
		}
		s := newSSEClient(fmt.Sprintf("s%d", i+1), kind, path, c.cfg.Seed+uint64(i), c.gateways, c.hist.add)
		c.sse = append(c.sse, s)
		c.sseWg.Add(1)
		go func() {
			defer c.sseWg.Done()
			s.run(ctx)
		}()
	}
}

// gateways returns the gateways that are up.
func (c *cluster) gateways() []gatewayAddr {
	var out []gatewayAddr
	for _, n := range c.in {
		if n.n.gw != nil {
			out = append(out, gatewayAddr{n.name, n.n.gw.addr})
		}
	}
	for _, p := range c.procs {
		p.mu.Lock()
		if p.gateway != "" {
			out = append(out, gatewayAddr{p.name, p.gateway})
		}
		p.mu.Unlock()
	}
	return out
}

// stopSSE stops the SSE clients.
func (c *cluster) stopSSE() {
	if c.sseCancel == nil {
		return
	}
	c.sseCancel()
	c.sseWg.Wait()
	for _, s := range c.sse {
		s.close()
	}
	c.sseCancel = nil
}

// targets returns every node's name and proxy (nil on a failover deployment).
func (c *cluster) targets() (names []string, proxies []*faultproxy.Proxy) {
	for _, n := range c.in {
		names, proxies = append(names, n.name), append(proxies, n.proxy)
	}
	for _, p := range c.procs {
		names, proxies = append(names, p.name), append(proxies, p.proxy)
	}
	return names, proxies
}

// since returns how long after the run's start t is.
func (c *cluster) since(t time.Time) time.Duration { return t.Sub(c.start).Round(time.Millisecond) }

// heal undoes whatever fault could be left and makes sure every process node runs.
func (c *cluster) heal() {
	_, proxies := c.targets()
	for _, px := range proxies {
		if px != nil {
			px.SetBlocked(false)
			px.SetStalled(false)
			px.SetLatency(0)
		}
	}
	if c.srv != nil {
		_, _ = c.srv.Do("CONFIG", "SET", "client-output-buffer-limit", defaultPubSubLimit)
	}
	for _, p := range c.procs {
		p.mu.Lock()
		running := p.running
		p.mu.Unlock()
		if !running {
			if err := p.start(); err != nil {
				c.t.Fatal(err)
			}
		}
	}
}

// stopWork stops every node's workload and waits for their ops.
func (c *cluster) stopWork() []string {
	var errs []string
	var wg sync.WaitGroup
	for _, n := range c.in {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.n.StopWork()
		}()
	}
	for _, p := range c.procs {
		if err := p.stop(c.cfg.OpTimeout + 10*time.Second); err != nil {
			errs = append(errs, err.Error())
		}
	}
	wg.Wait()
	return errs
}

// redisFinal is Redis's state after the run: the truth the replicas are compared with.
type redisFinal struct {
	MapEpoch  string
	MapHead   uint64
	DX, DY    uint64
	N         int
	State     map[string]Stored
	MapLog    map[uint64]change // the map channel's log, by seq (single-op records)
	MapFirst  uint64            // first seq in the log (1 when nothing was trimmed)
	ChanEpoch string
	ChanHead  uint64
	ChanLog   map[uint64]string // payload ids, by seq
	ChanFirst uint64
	Problems  []string // what did not parse
}

// keys are the Redis names of channel or map name.
func (c *cluster) keys(name string) wire.Keys {
	k, err := wire.KeysFor(c.prefix, name)
	if err != nil {
		panic(err) // the suite's own names
	}
	return k
}

// readRedis reads the final state directly, without the library under test.
func (c *cluster) readRedis() (*redisFinal, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rc := c.injRC
	rf := &redisFinal{State: map[string]Stored{}, MapLog: map[uint64]change{}, ChanLog: map[uint64]string{}}
	vs, err := rc.Do(ctx, rc.B().Hmget().Key(c.keys(mapName).Meta).Field(wire.MapMetaFields...).Build()).ToArray()
	if err != nil {
		return nil, err
	}
	meta, err := wire.ParseMapMeta(vs)
	if err != nil {
		return nil, err
	}
	rf.MapEpoch, rf.MapHead, rf.DX, rf.DY, rf.N = meta.Epoch, meta.Seq, meta.Digest.X, meta.Digest.Y, meta.Keys
	state, err := rc.Do(ctx, rc.B().Hgetall().Key(c.keys(mapName).State).Build()).AsStrMap()
	if err != nil {
		return nil, err
	}
	for k, v := range state {
		st, err := splitStored(v)
		if err != nil {
			rf.Problems = append(rf.Problems, fmt.Sprintf("state of %s: %v", k, err))
			continue
		}
		rf.State[k] = st
	}
	entries, err := rc.Do(ctx, rc.B().Xrange().Key(c.keys(mapName).Log).Start("-").End("+").Build()).AsXRange()
	if err != nil {
		return nil, err
	}
	rf.MapFirst = readLog(rf.MapEpoch, entries, &rf.Problems, func(seq uint64, msg string) {
		chs, err := decodeRecord(msg)
		if err != nil || len(chs) != 1 {
			rf.Problems = append(rf.Problems, fmt.Sprintf("map log seq %d: %v (%d ops)", seq, err, len(chs)))
			return
		}
		rf.MapLog[seq] = chs[0]
	})
	cm, err := rc.Do(ctx, rc.B().Hmget().Key(c.keys(chanName).Meta).Field("epoch", "seq").Build()).ToArray()
	if err != nil {
		return nil, err
	}
	rf.ChanEpoch, _ = cm[0].ToString()
	s, _ := cm[1].ToString()
	rf.ChanHead, _ = strconv.ParseUint(s, 10, 64)
	entries, err = rc.Do(ctx, rc.B().Xrange().Key(c.keys(chanName).Log).Start("-").End("+").Build()).AsXRange()
	if err != nil {
		return nil, err
	}
	rf.ChanFirst = readLog(rf.ChanEpoch, entries, &rf.Problems, func(seq uint64, msg string) {
		rf.ChanLog[seq] = payloadID([]byte(msg))
	})
	return rf, nil
}

// readLog decodes a channel's log entries (one envelope per publish call, PROTOCOL.md
// section 1) and hands each message to f. It returns the first seq the log holds.
func readLog(epoch string, entries []rueidis.XRangeEntry, problems *[]string, f func(seq uint64, msg string)) uint64 {
	var first, next uint64
	for _, e := range entries {
		env, err := wire.DecodeEnvelope(e.FieldValues["e"])
		switch {
		case err != nil:
			*problems = append(*problems, fmt.Sprintf("log entry %s: %v", e.ID, err))
			continue
		case env.Epoch != epoch || entrySeq(e.ID) != env.First:
			*problems = append(*problems, fmt.Sprintf("log entry %s holds the envelope of %s:%d", e.ID, env.Epoch, env.First))
		case next != 0 && env.First != next:
			*problems = append(*problems, fmt.Sprintf("log entry %s follows messages up to %d", e.ID, next-1))
		}
		if first == 0 {
			first = env.First
		}
		for i, d := range env.Data {
			f(env.First+uint64(i), d)
		}
		next = env.First + uint64(len(env.Data))
	}
	return first
}

func entrySeq(id string) uint64 {
	s, _, _ := strings.Cut(id, "-")
	seq, _ := strconv.ParseUint(s, 10, 64)
	return seq
}

// converge waits for every node to reach Redis's heads and collects their final states.
func (c *cluster) converge(rf *redisFinal) (map[string]*Final, []string) {
	tg := Targets{
		Map:  channel.Position{Epoch: rf.MapEpoch, Seq: rf.MapHead},
		Chan: channel.Position{Epoch: rf.ChanEpoch, Seq: rf.ChanHead},
	}
	finals := map[string]*Final{}
	var errs []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range c.in {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), c.cfg.ConvergeTimeout)
			f := n.n.Converge(ctx, tg)
			cancel()
			mu.Lock()
			finals[n.name] = f
			mu.Unlock()
		}()
	}
	for _, p := range c.procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := p.converge(tg, c.cfg.ConvergeTimeout)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err.Error())
				return
			}
			finals[p.name] = f
		}()
	}
	for _, s := range c.sse {
		wg.Add(1)
		go func() {
			defer wg.Done()
			target := tg.Chan
			if s.kind == StreamSSEMap {
				target = tg.Map
			}
			ctx, cancel := context.WithTimeout(context.Background(), c.cfg.ConvergeTimeout)
			defer cancel()
			_ = s.waitFor(ctx, target) // the sse checker says where it ended
		}()
	}
	wg.Wait()
	c.stopSSE()
	sort.Strings(errs)
	return finals, errs
}

// closeAll closes the nodes and reports leaks: connections the proxies still hold after a
// node closed, and node processes that did not exit cleanly (their TestMain checks for
// goroutine leaks).
func (c *cluster) closeAll() (leaks []string) {
	c.closed = true
	c.stopSSE()
	for _, n := range c.in {
		n.n.Close()
	}
	for _, n := range c.in {
		if n.proxy == nil {
			continue // a failover deployment: the node dialed Redis itself
		}
		deadline := time.Now().Add(3 * time.Second)
		for n.proxy.Conns() > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if k := n.proxy.Conns(); k > 0 {
			leaks = append(leaks, fmt.Sprintf("node %s left %d connections open after Close", n.name, k))
		}
		n.proxy.Close()
	}
	for _, p := range c.procs {
		if err := p.close(20 * time.Second); err != nil {
			leaks = append(leaks, err.Error())
		}
		if p.proxy != nil {
			p.proxy.Close()
		}
	}
	c.inj.Close()
	c.injRC.Close()
	c.logf.Close()
	return leaks
}

// abort ends a run the harness gave up on (t.Fatal, in a cleanup that runs before the
// deployment's): it keeps the history and the Redis logs in the run's directory, then stops
// every node without waiting for Redis (their contexts first: the deployment may be broken).
func (c *cluster) abort() {
	c.watch.finish()
	_ = writeLines(filepath.Join(c.dir, "history.jsonl"), c.hist.snapshot())
	c.keepLogs()
	c.t.Logf("the run was abandoned; its logs, history (history.jsonl) and Redis logs are kept in %s", c.dir)
	if c.closed {
		return
	}
	c.stopSSE()
	for _, n := range c.in {
		n.n.cancel()
		n.n.Close()
		if n.proxy != nil {
			n.proxy.Close()
		}
	}
	for _, p := range c.procs {
		p.mu.Lock()
		running := p.running
		p.mu.Unlock()
		if running {
			p.kill()
		}
		if p.proxy != nil {
			p.proxy.Close()
		}
	}
	c.inj.Close()
	c.injRC.Close()
	c.logf.Close()
}

// writeLines writes lines as JSON lines.
func writeLines(path string, lines []Line) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	for _, l := range lines {
		if err := enc.Encode(l); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// injectorPublish publishes a batch of messages from the harness itself, recording them as
// operations of the pseudo-node "inj".
func (c *cluster) injectorPublish(size, n int) error {
	msgs := make([][]byte, n)
	ids := make([]string, n)
	pad := strings.Repeat("x", size)
	for i := range msgs {
		c.injID++
		ids[i] = fmt.Sprintf("inj.1.b%d", c.injID)
		msgs[i] = []byte(ids[i] + "|" + pad)
	}
	call := time.Now().UnixNano()
	for i := range ids {
		c.hist.add(Line{T: LineCall, Node: "inj", Inc: 1, ID: c.injID - uint64(n-1-i), At: call, Kind: OpPub, Val: ids[i]})
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.OpTimeout)
	pos, err := c.inj.PublishBatch(ctx, chanName, msgs)
	cancel()
	ret := time.Now().UnixNano()
	for i := range ids {
		l := Line{T: LineReturn, Node: "inj", Inc: 1, ID: c.injID - uint64(n-1-i), At: ret, Kind: OpPub, Val: ids[i], Status: StatusOK}
		if err != nil {
			l.Status, l.Err = StatusError, err.Error()
		} else {
			l.Epoch, l.Ver = pos.Epoch, pos.Seq+uint64(i)
		}
		c.hist.add(l)
	}
	return err
}

// discard is a logger for nothing.
var discard = slog.New(slog.NewTextHandler(io.Discard, nil))
