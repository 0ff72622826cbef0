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
	// EnvRounds, when set, ends each run of the long mode's fault period once every fault kind
	// was injected that many times (RunConfig.Rounds), as the short mode's cluster run does.
	EnvRounds = "REDISYNC_ROBUST_ROUNDS"
	// EnvStrict, set to 1, counts the instances of the library's known issues
	// (check_failover.go) as violations: the run fails on them.
	EnvStrict = "REDISYNC_ROBUST_STRICT"
	// EnvAnalyze names the directory a failed run kept: TestAnalyzeKeptRun runs the checkers
	// again on its history.jsonl and analysis.json (to study a run, or a checker's change).
	EnvAnalyze = "REDISYNC_ROBUST_ANALYZE"
	// EnvDeploy lists the deployments of the long mode, separated by commas: single (one
	// redis-server, aof or wipe by seed), sentinel, cluster (failover.go). Run i of the long
	// mode uses the (i mod n)-th; default all three. With a short EnvDuration it replays one
	// run of that deployment.
	EnvDeploy = "REDISYNC_ROBUST_DEPLOY"
)

// shortRuns are the runs of the short mode (CI): two with persistence and one without on a
// single server, one on a Redis Cluster.
var shortRuns = []struct {
	deploy string
	seed   uint64
	faults time.Duration
	rounds int
}{
	{DeploySingle, 1, shortFaults, 0},
	{DeploySingle, 2, shortFaults, 0},
	{DeploySingle, 3, shortFaults, 0},
	{DeployCluster, 4, shortFailoverFaults, 1},
}

// shortFaults is how long each short run on a single server injects faults: long enough for
// every fault kind.
const shortFaults = 22 * time.Second

// shortFailoverFaults bounds how long the short run on a cluster injects faults; it stops
// after one round, every fault kind once (about 13 s).
const shortFailoverFaults = 20 * time.Second

// defaultDeploys are the deployments of the long mode when EnvDeploy is unset.
const defaultDeploys = DeploySingle + "," + DeploySentinel + "," + DeployCluster

// rueidisTimers are the timers rueidis's cluster client leaves behind when it is closed
// during a failover: a delayed topology refresh and a delayed close of connections to nodes
// that serve no slot. Each ends by itself within seconds, touching nothing of ours.
var rueidisTimers = []goleak.Option{
	goleak.IgnoreAnyFunction("github.com/redis/rueidis.(*clusterClient)._refresh.func2"),
	goleak.IgnoreAnyFunction("github.com/redis/rueidis.(*call).DelayDo.func1"),
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, rueidisTimers...)
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
		for _, r := range shortRuns {
			cfg := RunConfigFor(r.deploy, r.seed, r.faults)
			cfg.Rounds = r.rounds
			t.Run(fmt.Sprintf("seed=%d/%s", r.seed, cfg.Scenario), func(t *testing.T) {
				addFigures(&total, runOnce(t, cfg))
			})
		}
		t.Logf("short mode: %d runs in %v; %s", len(shortRuns), time.Since(start).Round(time.Second), total.summary())
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
	rounds := 0
	if s := os.Getenv(EnvRounds); s != "" {
		if rounds, err = strconv.Atoi(s); err != nil {
			t.Fatalf("%s=%q: %v", EnvRounds, s, err)
		}
	}
	ds := os.Getenv(EnvDeploy)
	if ds == "" {
		ds = defaultDeploys
	}
	deploys, err := parseDeploys(ds)
	if err != nil {
		t.Fatalf("%s=%q: %v", EnvDeploy, ds, err)
	}
	t.Logf("long mode: %v from seed %d, %v of faults per run, deployments %s", dur, seed, perRun, strings.Join(deploys, ", "))
	start := time.Now()
	var total Figures
	runs, failed := 0, 0
	for i := uint64(0); runs == 0 || time.Since(start)+perRun/2 < dur; i++ {
		cfg := RunConfigFor(deploys[i%uint64(len(deploys))], seed+i, perRun)
		cfg.Rounds = rounds
		ok := t.Run(fmt.Sprintf("seed=%d/%s", cfg.Seed, cfg.Scenario), func(t *testing.T) {
			addFigures(&total, runOnce(t, cfg))
		})
		runs++
		if !ok {
			failed++
		}
	}
	t.Logf("long mode: %d runs (%d failed) in %v from seed %d, deployments %s; %s", runs, failed, time.Since(start).Round(time.Second),
		seed, strings.Join(deploys, ", "), total.summary())
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
	total.Failovers += f.Failovers
	total.Lost += f.Lost
	total.LostToldAll += f.LostToldAll
	total.LostUnseen += f.LostUnseen
	total.Rewound += f.Rewound
	total.Reloads += f.Reloads
	total.Dropped += f.Dropped
	if total.Known == nil {
		total.Known = map[string]int{}
	}
	for k, v := range f.Known {
		total.Known[k] += v
	}
	if total.Scenarios == nil {
		total.Scenarios = map[string]int{}
	}
	for k, v := range f.Scenarios {
		total.Scenarios[k] += v
	}
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
	rounds := ""
	if cfg.Rounds > 0 {
		rounds = fmt.Sprintf("%s=%d ", EnvRounds, cfg.Rounds)
	}
	t.Logf("seed %d, scenario %s, %v of faults; replay: %s=%s %s=%d %s=%v %sgo test ./robustness -run TestRobustness -v",
		cfg.Seed, cfg.Scenario, cfg.Faults, EnvDeploy, deployOf(cfg.Scenario), EnvSeed, cfg.Seed, EnvDuration, cfg.Faults, rounds)
	ignore := goleak.IgnoreCurrent()
	began := time.Now()
	c := newCluster(t, cfg)
	finished := false
	t.Cleanup(func() {
		if !finished { // the harness gave up (t.Fatal): keep what there is, stop everything
			c.abort()
		}
	})
	c.startNodes()
	c.watch = c.startWatcher()
	c.runFaults()
	c.heal()
	time.Sleep(cfg.Quiet)
	stopErrs := c.stopWork()
	c.unscheduled(c.watch.finish())
	rf, err := c.readRedis()
	if err != nil {
		t.Fatalf("reading Redis's final state: %v", err)
	}
	finals, convErrs := c.converge(rf)
	if isFailoverScenario(cfg.Scenario) {
		t.Logf("deployment at the end: %s", c.roles())
	}
	leaks := c.closeAll()
	if err := goleak.Find(append([]goleak.Option{ignore, goleak.IgnoreAnyFunction("github.com/redisync/redisync/internal/redistest.(*Server).launch.func1")},
		rueidisTimers...)...); err != nil {
		leaks = append(leaks, err.Error())
	}

	for _, f := range c.faults {
		target := ""
		if f.Target != "" {
			target = " " + f.Target
		}
		t.Logf("fault %7v–%-7v %s%s %s", f.Start, f.End, f.Kind, target, f.Detail)
	}
	a := &Analysis{Scenario: cfg.Scenario, Lines: c.hist.snapshot(), Redis: rf, Finals: finals, Wipes: c.wipes, Failovers: c.failovers}
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
	fig.Scenarios = map[string]int{cfg.Scenario: 1}
	t.Logf("map: %d ops, %d acknowledged, %d conflicts, %d deletes of absent keys, %d unknown outcome; channel: %d publishes, %d acknowledged, %d unknown; %d events (%d resets); %d FromNow probes (%d reached the head); %d SSE connections (%d resumed); %d retried script calls; %d faults; Redis heads map %s:%d channel %s:%d",
		fig.Ops, fig.Acked, fig.Conflicts, fig.Absent, fig.Unknown, fig.Pubs, fig.PubsAcked, fig.PubsUnknown, fig.Events, fig.Resets,
		fig.Probes, fig.ProbesReached, fig.SSEConns, fig.SSEResumes, fig.Retries,
		len(c.faults), rf.MapEpoch, rf.MapHead, rf.ChanEpoch, rf.ChanHead)
	if a.failover() {
		t.Logf("failovers: %d (%d that can lose writes); acknowledged writes and publishes lost by them: %d reported by a rewound reset (%d of them by every node's replica stream), %d before any stream delivered them; %d rewound resets, %d replica reloads; %d operations left out of the linearizability check as lost history",
			len(c.failovers), fig.Failovers, fig.Lost, fig.LostToldAll, fig.LostUnseen, fig.Rewound, fig.Reloads, fig.Dropped)
	}
	failed := false
	fig.ByCheck, fig.Known = map[string]int{}, map[string]int{}
	strict := os.Getenv(EnvStrict) == "1"
	for _, r := range results {
		if r.Known && !strict {
			if r.Count > 0 {
				fig.Known[r.Name] += r.Count
			}
			t.Logf("check %s", r)
			continue
		}
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
	finished = true
	t.Logf("run took %v", time.Since(began).Round(100*time.Millisecond))
	if failed {
		if err := writeLines(filepath.Join(c.dir, "history.jsonl"), a.Lines); err != nil {
			t.Logf("writing the history: %v", err)
		}
		c.keepLogs()
		if err := writeAnalysis(filepath.Join(c.dir, "analysis.json"), a); err != nil {
			t.Logf("writing the analysis: %v", err)
		}
		t.Logf("logs, history (history.jsonl) and Redis's final state (analysis.json) of the run kept in %s; %s=%s go test ./robustness -run TestAnalyzeKeptRun -v checks them again",
			c.dir, EnvAnalyze, c.dir)
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
	var scen []string
	for _, k := range sortedKeys(f.Scenarios) {
		scen = append(scen, fmt.Sprintf("%s %d", k, f.Scenarios[k]))
	}
	var known []string
	for _, k := range sortedKeys(f.Known) {
		known = append(known, fmt.Sprintf("%s %d", k, f.Known[k]))
	}
	return fmt.Sprintf("known issues (%s), runs by scenario (%s), map ops %d (acknowledged %d, conflicts %d, deletes of absent keys %d, unknown %d), publishes %d (acknowledged %d, unknown %d), events %d (resets %d), FromNow probes %d (reached the head %d), SSE connections %d (resumed %d), retried script calls %d, faults %d (%s), lossy failovers %d, acknowledged writes lost by failovers %d reported (by every node's replica stream %d) and %d before any stream delivered them, rewound resets %d, replica reloads %d, operations left out of linearizability %d, violations %d %v",
		strings.Join(known, ", "), strings.Join(scen, ", "), f.Ops, f.Acked, f.Conflicts, f.Absent, f.Unknown, f.Pubs, f.PubsAcked, f.PubsUnknown, f.Events, f.Resets, f.Probes, f.ProbesReached,
		f.SSEConns, f.SSEResumes, f.Retries, n, strings.Join(faults, ", "), f.Failovers, f.Lost, f.LostToldAll, f.LostUnseen, f.Rewound, f.Reloads, f.Dropped, f.Violations, f.ByCheck)
}

// keptAnalysis is what a failed run keeps of its Analysis besides the history.
type keptAnalysis struct {
	Scenario  string
	Redis     *redisFinal
	Finals    map[string]*Final
	Nodes     []string
	Wipes     []wipeWindow
	Failovers []failoverWindow
}

func writeAnalysis(path string, a *Analysis) error {
	b, err := json.Marshal(keptAnalysis{a.Scenario, a.Redis, a.Finals, a.Nodes, a.Wipes, a.Failovers})
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// TestAnalyzeKeptRun runs the checkers on a run kept in the directory EnvAnalyze names.
func TestAnalyzeKeptRun(t *testing.T) {
	dir := os.Getenv(EnvAnalyze)
	if dir == "" {
		t.Skip(EnvAnalyze + " names no kept run")
	}
	b, err := os.ReadFile(filepath.Join(dir, "analysis.json"))
	if err != nil {
		t.Fatal(err)
	}
	var k keptAnalysis
	if err := json.Unmarshal(b, &k); err != nil {
		t.Fatal(err)
	}
	hb, err := os.ReadFile(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	a := &Analysis{Scenario: k.Scenario, Redis: k.Redis, Finals: k.Finals, Nodes: k.Nodes, Wipes: k.Wipes, Failovers: k.Failovers}
	for _, line := range strings.Split(strings.TrimSpace(string(hb)), "\n") {
		l, err := parseLine([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		a.Lines = append(a.Lines, l)
	}
	results := append(a.Check(), a.checkLinearizable(t.TempDir(), 0, time.Minute))
	for _, r := range results {
		if r.Count > 0 && (!r.Known || os.Getenv(EnvStrict) == "1") {
			t.Errorf("check %s", r)
		} else {
			t.Logf("check %s", r)
		}
	}
	fig := a.figures()
	t.Logf("%d acknowledged writes lost by failovers (%d reported by every replica stream), %d rewound resets, %d operations left out of linearizability",
		fig.Lost, fig.LostToldAll, fig.Rewound, fig.Dropped)
}
