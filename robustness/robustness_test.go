package robustness

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Environment of the long mode.
const (
	// EnvDuration switches to the long mode: runs follow each other for that long (a Go
	// duration, e.g. 10m).
	EnvDuration = "REDISYNC_ROBUST_DURATION"
	// EnvSeed is the seed of the first run of the long mode (random when unset); run i uses
	// seed+i. With a short EnvDuration it replays one run of any mode.
	EnvSeed = "REDISYNC_ROBUST_SEED"
	// EnvRunFaults is how long each run of the long mode injects faults (default 60s).
	EnvRunFaults = "REDISYNC_ROBUST_RUN"
)

// shortSeeds are the runs of the short mode (CI): two with persistence, one without.
var shortSeeds = []uint64{1, 2, 3}

// shortFaults is how long each short run injects faults: long enough for every fault kind.
const shortFaults = 22 * time.Second

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestNodeProcess is the entry point of a node process: TestRobustness re-executes the test
// binary with -test.run=^TestNodeProcess$ and EnvNodeProcess set. Run directly it does
// nothing.
func TestNodeProcess(t *testing.T) {
	cfg := os.Getenv(EnvNodeProcess)
	if cfg == "" {
		return // not a child of TestRobustness
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := RunNodeProcess(cfg, os.Stdin, os.Stdout, log); err != nil {
		t.Fatal(err)
	}
}

func TestRobustness(t *testing.T) {
	if os.Getenv(EnvNodeProcess) != "" {
		return
	}
	durS := os.Getenv(EnvDuration)
	if durS == "" {
		start := time.Now()
		var total Figures
		for _, seed := range shortSeeds {
			cfg := DefaultRunConfig(seed, shortFaults)
			t.Run(fmt.Sprintf("seed=%d/%s", seed, cfg.Scenario), func(t *testing.T) {
				addFigures(&total, runOnce(t, cfg))
			})
		}
		t.Logf("short mode: %d runs in %v; %s", len(shortSeeds), time.Since(start).Round(time.Second), total.summary())
		return
	}
	dur, err := time.ParseDuration(durS)
	if err != nil {
		t.Fatalf("%s=%q: %v", EnvDuration, durS, err)
	}
	seed := rand.Uint64() % 1_000_000_000
	if s := os.Getenv(EnvSeed); s != "" {
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", EnvSeed, s, err)
		}
	}
	perRun := 60 * time.Second
	if s := os.Getenv(EnvRunFaults); s != "" {
		if perRun, err = time.ParseDuration(s); err != nil {
			t.Fatalf("%s=%q: %v", EnvRunFaults, s, err)
		}
	}
	perRun = min(perRun, dur)
	t.Logf("long mode: %v from seed %d, %v of faults per run", dur, seed, perRun)
	start := time.Now()
	var total Figures
	runs, failed := 0, 0
	for i := uint64(0); runs == 0 || time.Since(start)+perRun/2 < dur; i++ {
		cfg := DefaultRunConfig(seed+i, perRun)
		ok := t.Run(fmt.Sprintf("seed=%d/%s", cfg.Seed, cfg.Scenario), func(t *testing.T) {
			addFigures(&total, runOnce(t, cfg))
		})
		runs++
		if !ok {
			failed++
		}
	}
	t.Logf("long mode: %d runs (%d failed) in %v from seed %d; %s", runs, failed, time.Since(start).Round(time.Second), seed, total.summary())
}

func addFigures(total *Figures, f Figures) {
	total.Ops += f.Ops
	total.Acked += f.Acked
	total.Conflicts += f.Conflicts
	total.Absent += f.Absent
	total.Unknown += f.Unknown
	total.Pubs += f.Pubs
	total.PubsAcked += f.PubsAcked
	total.PubsUnknown += f.PubsUnknown
	total.Events += f.Events
	total.Resets += f.Resets
	total.Retries += f.Retries
	total.Probes += f.Probes
	total.ProbesReached += f.ProbesReached
	total.SSEConns += f.SSEConns
	total.SSEResumes += f.SSEResumes
	total.Violations += f.Violations
	if total.Faults == nil {
		total.Faults = map[string]int{}
	}
	for k, v := range f.Faults {
		total.Faults[k] += v
	}
	if total.ByCheck == nil {
		total.ByCheck = map[string]int{}
	}
	for k, v := range f.ByCheck {
		total.ByCheck[k] += v
	}
}

// runOnce runs one seed and fails t on any violation.
func runOnce(t *testing.T, cfg RunConfig) Figures {
	t.Logf("seed %d, scenario %s, %v of faults; replay: %s=%d %s=%v go test ./robustness -run TestRobustness -v",
		cfg.Seed, cfg.Scenario, cfg.Faults, EnvSeed, cfg.Seed, EnvDuration, cfg.Faults)
	ignore := goleak.IgnoreCurrent()
	began := time.Now()
	c := newCluster(t, cfg)
	c.startNodes()
	c.runFaults()
	c.heal()
	time.Sleep(cfg.Quiet)
	stopErrs := c.stopWork()
	rf, err := c.readRedis()
	if err != nil {
		t.Fatalf("reading Redis's final state: %v", err)
	}
	finals, convErrs := c.converge(rf)
	leaks := c.closeAll()
	if err := goleak.Find(ignore, goleak.IgnoreAnyFunction("github.com/redisync/redisync/internal/redistest.(*Server).launch.func1")); err != nil {
		leaks = append(leaks, err.Error())
	}

	for _, f := range c.faults {
		target := ""
		if f.Target != "" {
			target = " " + f.Target
		}
		t.Logf("fault %7v–%-7v %s%s %s", f.Start, f.End, f.Kind, target, f.Detail)
	}
	a := &Analysis{Scenario: cfg.Scenario, Lines: c.hist.snapshot(), Redis: rf, Finals: finals, Wipes: c.wipes}
	for _, n := range c.in {
		a.Nodes = append(a.Nodes, n.name)
	}
	for _, p := range c.procs {
		a.Nodes = append(a.Nodes, p.name)
	}
	results := a.Check()
	results = append(results, a.checkLinearizable(c.dir, cfg.Seed, cfg.LinearizeTimeout))
	lk := &CheckResult{Name: "no-leak", Checked: len(a.Nodes) + 1}
	for _, l := range append(leaks, append(stopErrs, convErrs...)...) {
		lk.fail("%s", l)
	}
	results = append(results, lk)

	fig := a.figures()
	for _, f := range c.faults {
		fig.Faults[f.Kind]++
	}
	t.Logf("map: %d ops, %d acknowledged, %d conflicts, %d deletes of absent keys, %d unknown outcome; channel: %d publishes, %d acknowledged, %d unknown; %d events (%d resets); %d FromNow probes (%d reached the head); %d SSE connections (%d resumed); %d retried script calls; %d faults; Redis heads map %s:%d channel %s:%d",
		fig.Ops, fig.Acked, fig.Conflicts, fig.Absent, fig.Unknown, fig.Pubs, fig.PubsAcked, fig.PubsUnknown, fig.Events, fig.Resets,
		fig.Probes, fig.ProbesReached, fig.SSEConns, fig.SSEResumes, fig.Retries,
		len(c.faults), rf.MapEpoch, rf.MapHead, rf.ChanEpoch, rf.ChanHead)
	failed := false
	fig.ByCheck = map[string]int{}
	for _, r := range results {
		fig.Violations += r.Count
		if r.Count > 0 {
			fig.ByCheck[r.Name] += r.Count
		}
		if r.Count > 0 {
			failed = true
			t.Errorf("check %s", r)
		} else {
			t.Logf("check %s", r)
		}
	}
	t.Logf("run took %v", time.Since(began).Round(100*time.Millisecond))
	if failed {
		if err := writeHistory(filepath.Join(c.dir, "history.jsonl"), a.Lines); err != nil {
			t.Logf("writing the history: %v", err)
		}
		t.Logf("logs and history (history.jsonl) of the run kept in %s", c.dir)
	} else {
		os.RemoveAll(c.dir)
	}
	return fig
}

func (f Figures) summary() string {
	var faults []string
	n := 0
	for _, k := range sortedKeys(f.Faults) {
		faults = append(faults, fmt.Sprintf("%s %d", k, f.Faults[k]))
		n += f.Faults[k]
	}
	return fmt.Sprintf("map ops %d (acknowledged %d, conflicts %d, deletes of absent keys %d, unknown %d), publishes %d (acknowledged %d, unknown %d), events %d (resets %d), FromNow probes %d (reached the head %d), SSE connections %d (resumed %d), retried script calls %d, faults %d (%s), violations %d %v",
		f.Ops, f.Acked, f.Conflicts, f.Absent, f.Unknown, f.Pubs, f.PubsAcked, f.PubsUnknown, f.Events, f.Resets, f.Probes, f.ProbesReached,
		f.SSEConns, f.SSEResumes, f.Retries, n, strings.Join(faults, ", "), f.Violations, f.ByCheck)
}

// writeHistory writes lines as JSON lines, for a failed run to be studied.
func writeHistory(path string, lines []Line) error {
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
