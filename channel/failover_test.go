package channel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redisync/redisync/internal/redistest"
	"github.com/redisync/redisync/redisconn"
)

// Failover tests run against deployments as production runs them: a Sentinel set and a Redis
// Cluster, with failovers that lose acknowledged writes (a master killed while its replicas
// lag). What they check, for every subscriber: its deliveries, taking each rewound reset as
// "forget what you delivered in this range", end up exactly the final history of the log —
// every acknowledged message that survived is delivered once, and no message it delivered is
// missing from the final history without a reset covering it.

// publisher publishes "NAME-i" messages on channels in turn, one call each, and records what
// Redis acknowledged.
type publisher struct {
	c     *Client
	names []string

	mu            sync.Mutex
	acked         map[string][]ackedMsg // per channel
	n             int
	notReplicated []ackedMsg // with MinReplicas: applied on the master only, as far as it knew
}

type ackedMsg struct {
	pos  Position
	data string
}

func (p *publisher) run(ctx context.Context) {
	for i := 0; ctx.Err() == nil; i++ {
		name := p.names[i%len(p.names)]
		data := fmt.Sprintf("%s-%d", name, i)
		pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		pos, err := p.c.Publish(pctx, name, []byte(data))
		cancel()
		if errors.Is(err, ErrNotReplicated) {
			p.mu.Lock()
			p.notReplicated = append(p.notReplicated, ackedMsg{pos, data})
			p.mu.Unlock()
			continue
		}
		if err != nil {
			continue // not acknowledged (the context ended, or the outcome is unknown)
		}
		p.mu.Lock()
		p.acked[name] = append(p.acked[name], ackedMsg{pos, data})
		p.n++
		p.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
}

func (p *publisher) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// waitAcked waits until n more messages than now were acknowledged.
func (p *publisher) waitAcked(t *testing.T, n int) {
	t.Helper()
	want := p.count() + n
	waitLong(t, func() bool { return p.count() >= want })
}

// finalLog reads the whole log of name: seq to message, with the epoch.
func finalLog(t *testing.T, c *Client, name string) (string, map[uint64]string) {
	t.Helper()
	k := c.keysMust(t, name)
	out := make(map[uint64]string)
	var epoch string
	for from := uint64(1); ; {
		f, err := c.fetchRetrying(context.Background(), k, "", from, 500)
		if err != nil {
			t.Fatal(err)
		}
		epoch = f.Epoch
		for _, e := range f.Entries {
			for i, d := range e.Data {
				out[e.First+uint64(i)] = d
			}
			from = e.Last() + 1
		}
		if from > f.Head || len(f.Entries) == 0 {
			return epoch, out
		}
	}
}

// replay applies a subscriber's events: messages are added, a rewound or trimmed reset removes
// its range. It fails on a duplicate delivery (a seq delivered twice with no reset between).
func replay(t *testing.T, events []Event) map[uint64]string {
	t.Helper()
	state := make(map[uint64]string)
	for _, ev := range events {
		if r := ev.Reset; r != nil {
			if r.Reason == ResetEpochChanged {
				t.Fatalf("unexpected epoch change: %+v", r)
			}
			for s := r.From; s <= r.To; s++ {
				delete(state, s)
			}
			continue
		}
		if old, dup := state[ev.Seq]; dup {
			t.Fatalf("seq %d delivered twice (%q then %q) with no reset between", ev.Seq, old, ev.Data)
		}
		state[ev.Seq] = string(ev.Data)
	}
	return state
}

// checkConverged waits until every recorder's replayed history equals the final log of its
// channel after its start, and reports what the failover lost.
func checkConverged(t *testing.T, c *Client, p *publisher, recs map[string][]*startedRecorder) (lost int) {
	t.Helper()
	for _, name := range p.names {
		rs := recs[name]
		epoch, final := finalLog(t, c, name)
		for _, r := range rs {
			deadline := time.Now().Add(20 * time.Second)
			for {
				got := replay(t, r.snapshot())
				diff := compareHistory(got, final, r.start)
				if diff == "" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("channel %s, subscriber from %d: history differs from the log: %s", name, r.start, diff)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		head := uint64(0)
		for s := range final {
			head = max(head, s)
		}
		p.mu.Lock()
		for _, a := range p.acked[name] {
			if a.pos.Epoch != epoch {
				t.Fatalf("acknowledged %v is of another epoch than the final %s", a.pos, epoch)
			}
			if a.pos.Seq <= head && final[a.pos.Seq] != a.data {
				lost++
			}
		}
		p.mu.Unlock()
	}
	return lost
}

// compareHistory says how got (a replayed subscription) differs from the final log after start.
// Publishing may go on after the log was read: deliveries past its head are not compared.
func compareHistory(got, final map[uint64]string, start uint64) string {
	head := uint64(0)
	for s, d := range final {
		head = max(head, s)
		if s > start && got[s] != d {
			return fmt.Sprintf("seq %d: delivered %q, the log holds %q", s, got[s], d)
		}
	}
	for s, d := range got {
		if s <= head && final[s] != d {
			return fmt.Sprintf("seq %d: delivered %q and not covered by a reset, the log holds %q", s, d, final[s])
		}
	}
	return ""
}

type startedRecorder struct {
	*recorder
	start uint64
}

func failoverClient(t *testing.T, url, prefix string, sharded bool, more ...func(*Config)) *Client {
	t.Helper()
	rc, err := redisconn.Open(context.Background(), redisconn.Options{URL: url, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Prefix: prefix, Sharded: sharded, IdleCheck: 100 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, f := range more {
		f(&cfg)
	}
	c, err := New(rc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); rc.Close() })
	return c
}

// startSubs starts a subscription from now on each channel, on its own client.
func startSubs(t *testing.T, url, prefix string, sharded bool, names []string, recs map[string][]*startedRecorder) {
	t.Helper()
	c := failoverClient(t, url, prefix, sharded)
	for _, n := range names {
		r := &recorder{}
		s, err := c.Subscribe(context.Background(), n, FromNow(), r.handle)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		recs[n] = append(recs[n], &startedRecorder{r, s.Start().Seq})
	}
}

func TestSentinelFailoverThatLosesAcknowledgedMessages(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Sentinel deployment; skipped with -short")
	}
	d := redistest.StartSentinel(t, redistest.SentinelOptions{})
	prefix := "t" + strconv.FormatInt(time.Now().UnixNano(), 36)
	names := []string{"a", "b", "c"}
	pub := failoverClient(t, d.URL(), prefix, false)
	recs := make(map[string][]*startedRecorder)
	startSubs(t, d.URL(), prefix, false, names, recs)

	p := &publisher{c: pub, names: names, acked: make(map[string][]ackedMsg)}
	ctx, cancel := context.WithCancel(context.Background())
	var running sync.WaitGroup
	running.Add(2)
	go func() { defer running.Done(); p.run(ctx) }()
	defer func() { cancel(); running.Wait() }()
	// A second publisher asks for one replica (WAIT) before a publish counts as acknowledged.
	durable := failoverClient(t, d.URL(), prefix, false, func(c *Config) { c.MinReplicas, c.ReplicaTimeout = 1, 200*time.Millisecond })
	dp := &publisher{c: durable, names: []string{"w"}, acked: make(map[string][]ackedMsg)}
	go func() { defer running.Done(); dp.run(ctx) }()

	p.waitAcked(t, 150)
	// The replicas stop receiving; the master keeps acknowledging, then dies.
	stalled := d.StallReplicas()
	p.waitAcked(t, 90)
	waitLong(t, func() bool { dp.mu.Lock(); defer dp.mu.Unlock(); return len(dp.notReplicated) >= 2 })
	old := d.Master()
	old.Kill()
	for _, r := range stalled {
		r.Resume()
	}
	d.WaitFailover(old)
	startSubs(t, d.URL(), prefix, false, names, recs) // late joiners, from now after the failover
	p.waitAcked(t, 150)
	dp.waitAcked(t, 20)
	cancel()
	running.Wait()

	lost := checkConverged(t, pub, p, recs)
	// Every publish that WAIT confirmed survived; those lost had said ErrNotReplicated.
	if dlost := checkConverged(t, pub, dp, nil); dlost != 0 {
		t.Errorf("%d publishes confirmed by a replica were lost", dlost)
	}
	if len(dp.notReplicated) == 0 {
		t.Error("no publish with MinReplicas reported ErrNotReplicated while the replicas were stalled")
	}
	t.Logf("Sentinel with MinReplicas 1: %d publishes confirmed, all kept; %d reported ErrNotReplicated", dp.count(), len(dp.notReplicated))
	if lost == 0 {
		t.Fatal("the failover lost no acknowledged message: the test did not exercise a rewind")
	}
	if pub.Stats().SeqsReused == 0 {
		t.Error("the publisher was given seqs again and did not count it")
	}
	t.Logf("Sentinel: %d messages acknowledged, %d of them lost by the failover, all reported by rewound resets", p.count(), lost)
}

func TestClusterFailoversAndSlotMoves(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster; skipped with -short")
	}
	cl := redistest.StartCluster(t, redistest.ClusterOptions{})
	prefix := "t" + strconv.FormatInt(time.Now().UnixNano(), 36)
	// Channels over every master: one Client follows them all.
	var names []string
	owners := make(map[*redistest.Server]string)
	for i := 0; len(owners) < 3; i++ {
		n := "ch" + strconv.Itoa(i)
		m := cl.MasterOf(cl.Slot(n))
		if _, ok := owners[m]; !ok {
			owners[m] = n
			names = append(names, n)
		}
	}
	pub := failoverClient(t, cl.URL(), prefix, true)
	recs := make(map[string][]*startedRecorder)
	startSubs(t, cl.URL(), prefix, true, names, recs)

	p := &publisher{c: pub, names: names, acked: make(map[string][]ackedMsg)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.run(ctx) }()
	defer func() { cancel(); <-done }()
	p.waitAcked(t, 100)

	// A manual failover loses nothing.
	m0 := cl.MasterOf(cl.Slot(names[0]))
	cl.Failover(m0)
	p.waitAcked(t, 100)
	if lost := checkConverged(t, pub, p, recs); lost != 0 {
		t.Fatalf("CLUSTER FAILOVER lost %d acknowledged messages", lost)
	}

	// A slot move: Redis ends the sharded subscription (SUNSUBSCRIBE), and the subscriber
	// follows the channel to its new master at once, not at its next idle check.
	watcher := failoverClient(t, cl.URL(), prefix, true, func(c *Config) { c.IdleCheck = time.Hour })
	wrec, _ := subscribe(t, watcher, names[1], FromNow())
	p.waitAcked(t, 20)
	slot := cl.Slot(names[1])
	var to *redistest.Server
	for _, m := range cl.Masters() {
		if m != cl.MasterOf(slot) {
			to = m
			break
		}
	}
	cl.MigrateSlot(slot, to)
	moved := time.Now()
	before := len(wrec.snapshot())
	waitLong(t, func() bool { return watcher.Stats().Reconnects > 0 && len(wrec.snapshot()) > before+10 })
	t.Logf("slot move: the subscriber subscribed again and delivered 10 more messages within %v", time.Since(moved).Round(time.Millisecond))
	p.waitAcked(t, 100)

	// A master killed while its replica lags loses acknowledged messages.
	victim := cl.MasterOf(cl.Slot(names[2]))
	replica := cl.ReplicaOf(victim)
	replica.Pause()
	if n := victim.ClientKill("replica"); n != 1 {
		t.Fatalf("closed %d replication links, want 1", n)
	}
	p.waitAcked(t, 60)
	victim.Kill()
	replica.Resume()
	cl.WaitFailover(victim)
	startSubs(t, cl.URL(), prefix, true, names, recs)
	p.waitAcked(t, 100)
	cancel()
	<-done

	lost := checkConverged(t, pub, p, recs)
	if lost == 0 {
		t.Fatal("killing a lagging master lost no acknowledged message: the test did not exercise a rewind")
	}
	t.Logf("Cluster: %d messages acknowledged, %d lost by the failover of a lagging master, all reported by rewound resets", p.count(), lost)

}

// waitLong waits up to 60 s for cond: failovers on a busy machine take a while.
func waitLong(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 60s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
