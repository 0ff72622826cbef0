package robustness

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/internal/wire"
)

// The checkers are only worth something if they fail on bad histories: these tests feed them
// small hand-made histories, a sound one and broken variants of it.

// goodAnalysis returns a consistent history: node n1 sets k0 and k1, deletes k0, publishes two
// messages, and its watch, subscription and OnChange saw all of it.
func goodAnalysis() *Analysis {
	rf := &redisFinal{
		MapEpoch: "E", MapHead: 3, MapFirst: 1,
		MapLog: map[uint64]change{
			1: {Key: "k0", Val: "a"},
			2: {Key: "k1", Val: "b"},
			3: {Key: "k0", Del: true, Old: 1},
		},
		State:     map[string]Stored{"k1": {Ver: 2, Val: "b"}},
		ChanEpoch: "C", ChanHead: 2, ChanFirst: 1,
		ChanLog: map[uint64]string{1: "x", 2: "y"},
	}
	rf.DX, rf.DY = stateDigest(rf.State)
	rf.N = 1
	t := int64(1000)
	var lines []Line
	op := func(kind, key, val string, exp uint64, ret Line) {
		t += 10
		id := uint64(len(lines) + 1)
		lines = append(lines, Line{T: LineCall, Node: "n1", ID: id, At: t, Kind: kind, Key: key, Val: val, Exp: exp})
		ret.T, ret.Node, ret.ID, ret.At, ret.Kind, ret.Key = LineReturn, "n1", id, t+5, kind, key
		if kind == OpPub {
			ret.Val = val
		}
		lines = append(lines, ret)
	}
	op(OpSet, "k0", "a", 0, Line{Status: StatusOK, Ver: 1})
	op(OpCAS, "k1", "b", 0, Line{Status: StatusOK, Ver: 2})
	op(OpRead, "k1", "", 0, Line{Status: StatusOK, Present: true, Ver: 2, Val: "b"})
	op(OpCAS, "k1", "c", 1, Line{Status: StatusConflict, Actual: 2})
	op(OpDel, "k0", "", 0, Line{Status: StatusOK, Ver: 3})
	op(OpPub, "", "x", 0, Line{Status: StatusOK, Epoch: "C", Ver: 1})
	op(OpPub, "", "y", 0, Line{Status: StatusOK, Epoch: "C", Ver: 2})
	for _, kind := range []string{StreamWatch, StreamOnChange} {
		for s := uint64(1); s <= 3; s++ {
			c := rf.MapLog[s]
			lines = append(lines, Line{T: LineEvent, Node: "n1", Kind: kind, Gen: 1, At: t, Epoch: "E", Ver: s,
				Key: c.Key, Val: c.Val, Del: c.Del, Old: c.Old})
		}
	}
	for s := uint64(1); s <= 2; s++ {
		lines = append(lines, Line{T: LineEvent, Node: "n1", Kind: StreamSub, At: t, Epoch: "C", Ver: s, Val: rf.ChanLog[s]})
	}
	return &Analysis{
		Scenario: ScenarioAOF, Lines: lines, Redis: rf, Nodes: []string{"n1"},
		Finals: map[string]*Final{"n1": {Converged: true, State: map[string]Stored{"k1": {Ver: 2, Val: "b"}}, Verified: true, Match: true}},
	}
}

// violations runs every checker and returns the names of those that failed.
func violations(t *testing.T, a *Analysis) []string {
	t.Helper()
	var failed []string
	results := a.Check()
	results = append(results, a.checkLinearizable(t.TempDir(), 0, 10*time.Second))
	for _, r := range results {
		if r.Count > 0 {
			failed = append(failed, r.Name)
			t.Logf("%s", r)
		}
	}
	return failed
}

func TestCheckersPassASoundHistory(t *testing.T) {
	a := goodAnalysis()
	// A delete of k0 after the one that removed it finds it absent and writes nothing.
	a.Lines = append(a.Lines, Line{T: LineCall, Node: "n1", ID: 97, At: 5000, Kind: OpDel, Key: "k0"},
		Line{T: LineReturn, Node: "n1", ID: 97, At: 5001, Kind: OpDel, Key: "k0", Status: StatusAbsent})
	if got := violations(t, a); len(got) > 0 {
		t.Fatalf("a sound history failed %v", got)
	}
}

func TestCheckersCatchBrokenHistories(t *testing.T) {
	for _, tc := range []struct {
		name   string
		want   string
		break_ func(a *Analysis)
	}{
		{"gap in a watch", "streams", func(a *Analysis) { a.Lines = drop(a.Lines, StreamWatch, 2) }},
		{"duplicate in a subscription", "streams", func(a *Analysis) { a.Lines = dup(a.Lines, StreamSub, 1) }},
		{"watch short of the head", "streams", func(a *Analysis) { a.Lines = drop(a.Lines, StreamWatch, 3) }},
		{"wrong content", "streams", func(a *Analysis) { edit(a.Lines, StreamWatch, 2, func(l *Line) { l.Val = "z" }) }},
		{"reset with persistence", "streams", func(a *Analysis) {
			a.Lines = append(a.Lines, Line{T: LineEvent, Node: "n1", Kind: StreamSub, Epoch: "C", Ver: 2,
				Reset: &ResetInfo{Reason: "epoch-changed", From: 3, OldEpoch: "C", NewEpoch: "C2"}})
		}},
		{"onchange out of order", "streams", func(a *Analysis) { a.Lines = dup(a.Lines, StreamOnChange, 2) }},
		{"acknowledged write lost", "acked-writes", func(a *Analysis) {
			a.Redis.State["k1"] = Stored{Ver: 1, Val: "old"}
			a.Finals["n1"].State = a.Redis.State
			a.Redis.DX, a.Redis.DY = stateDigest(a.Redis.State)
		}},
		{"acknowledged publish not in the log", "acked-writes", func(a *Analysis) { a.Redis.ChanLog[2] = "other" }},
		{"write applied twice", "at-most-once", func(a *Analysis) {
			a.Redis.MapLog[4] = change{Key: "k1", Val: "b"}
		}},
		{"replica differs", "replicas", func(a *Analysis) { a.Finals["n1"].State = map[string]Stored{} }},
		{"not converged", "replicas", func(a *Analysis) { a.Finals["n1"].Converged = false }},
		{"verify mismatch", "digests", func(a *Analysis) { a.Finals["n1"].Match = false }},
		{"Redis digest wrong", "digests", func(a *Analysis) { a.Redis.DX++ }},
		{"node-side violation", "versions", func(a *Analysis) {
			a.Lines = append(a.Lines, Line{T: LineViolation, Node: "n1", Err: "went back"})
		}},
		{"stale read", "linearizable", func(a *Analysis) {
			// A read after the delete that still sees k0.
			a.Lines = append(a.Lines, Line{T: LineCall, Node: "n1", ID: 99, At: 5000, Kind: OpRead, Key: "k0"},
				Line{T: LineReturn, Node: "n1", ID: 99, At: 5001, Kind: OpRead, Key: "k0", Status: StatusOK, Present: true, Ver: 1, Val: "a"})
		}},
		{"delete finds absent a key that holds a value", "linearizable", func(a *Analysis) {
			a.Lines = append(a.Lines, Line{T: LineCall, Node: "n1", ID: 97, At: 5000, Kind: OpDel, Key: "k1"},
				Line{T: LineReturn, Node: "n1", ID: 97, At: 5001, Kind: OpDel, Key: "k1", Status: StatusAbsent})
		}},
		{"compare-and-set past a newer version", "linearizable", func(a *Analysis) {
			a.Lines = append(a.Lines, Line{T: LineCall, Node: "n1", ID: 98, At: 5000, Kind: OpCAS, Key: "k1", Val: "d", Exp: 1},
				Line{T: LineReturn, Node: "n1", ID: 98, At: 5001, Kind: OpCAS, Key: "k1", Status: StatusOK, Ver: 4})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := goodAnalysis()
			tc.break_(a)
			got := violations(t, a)
			found := false
			for _, g := range got {
				found = found || g == tc.want
			}
			if !found {
				t.Fatalf("checker %s did not fail; failed: %v", tc.want, got)
			}
		})
	}
}

// TestWipeResetIsLegitimate: after a restart without persistence, a reset from the lost epoch
// to the new one is expected, and writes acknowledged before it may be gone.
func TestWipeResetIsLegitimate(t *testing.T) {
	a := goodAnalysis()
	a.Scenario = ScenarioWipe
	a.Wipes = []wipeWindow{{KillStart: 4000, RestartDone: 4100}}
	// Redis lost everything; a new history holds one publish.
	a.Redis.ChanEpoch, a.Redis.ChanHead, a.Redis.ChanLog = "C2", 1, map[uint64]string{1: "w"}
	a.Lines = append(a.Lines,
		Line{T: LineEvent, Node: "n1", Kind: StreamSub, At: 4200, Epoch: "C2",
			Reset: &ResetInfo{Reason: "epoch-changed", From: 3, Open: true, OldEpoch: "C", NewEpoch: "C2"}},
		Line{T: LineEvent, Node: "n1", Kind: StreamSub, At: 4300, Epoch: "C2", Ver: 1, Val: "w"},
		Line{T: LineCall, Node: "n1", ID: 50, At: 4250, Kind: OpPub, Val: "w"},
		Line{T: LineReturn, Node: "n1", ID: 50, At: 4260, Kind: OpPub, Val: "w", Status: StatusOK, Epoch: "C2", Ver: 1})
	if got := violations(t, a); len(got) > 0 {
		t.Fatalf("a legitimate reset failed %v", got)
	}
	// The same reset before any restart is a violation.
	a.Wipes[0] = wipeWindow{KillStart: 4500, RestartDone: 4600}
	if got := violations(t, a); len(got) == 0 {
		t.Fatal("a reset before the restart passed")
	}
}

func TestRegisterModel(t *testing.T) {
	model := registerModel()
	op := func(call, ret int64, in regInput, out regOutput) porcupine.Operation {
		return porcupine.Operation{Input: in, Output: out, Call: call, Return: ret}
	}
	set := func(v string) regInput { return regInput{Kind: OpSet, Key: "k", Val: v} }
	read := regInput{Kind: OpRead, Key: "k"}
	ok := func(v uint64) regOutput { return regOutput{Status: StatusOK, Ver: v} }
	saw := func(val string, v uint64) regOutput {
		return regOutput{Status: StatusOK, Present: true, Val: val, Ver: v}
	}
	unknown := regOutput{Status: statusUnknown}
	for _, tc := range []struct {
		name string
		h    []porcupine.Operation
		ok   bool
	}{
		{"sequential", []porcupine.Operation{op(0, 1, set("a"), ok(1)), op(2, 3, read, saw("a", 1))}, true},
		{"stale read", []porcupine.Operation{op(0, 1, set("a"), ok(1)), op(2, 3, set("b"), ok(2)), op(4, 5, read, saw("a", 1))}, false},
		{"concurrent read", []porcupine.Operation{op(0, 10, set("a"), ok(1)), op(2, 3, read, regOutput{Status: StatusOK})}, true},
		{"version went down", []porcupine.Operation{op(0, 1, set("a"), ok(5)), op(2, 3, set("b"), ok(4))}, false},
		{"unknown write seen", []porcupine.Operation{op(0, 100, set("a"), unknown), op(2, 3, read, saw("a", 7))}, true},
		{"unknown write not seen", []porcupine.Operation{op(0, 100, set("a"), unknown), op(2, 3, read, regOutput{Status: StatusOK})}, true},
		{"conflict reports the version", []porcupine.Operation{op(0, 1, set("a"), ok(3)),
			op(2, 3, regInput{Kind: OpCAS, Key: "k", Val: "b", Exp: 2}, regOutput{Status: StatusConflict, Actual: 3})}, true},
		{"conflict with a wrong version", []porcupine.Operation{op(0, 1, set("a"), ok(3)),
			op(2, 3, regInput{Kind: OpCAS, Key: "k", Val: "b", Exp: 2}, regOutput{Status: StatusConflict, Actual: 4})}, false},
		{"delete of an absent key", []porcupine.Operation{op(0, 1, regInput{Kind: OpDel, Key: "k"}, regOutput{Status: StatusAbsent}),
			op(2, 3, set("a"), ok(1)), op(4, 5, read, saw("a", 1))}, true},
		{"delete finds a present key absent", []porcupine.Operation{op(0, 1, set("a"), ok(1)),
			op(2, 3, regInput{Kind: OpDel, Key: "k"}, regOutput{Status: StatusAbsent})}, false},
		{"wipe empties", []porcupine.Operation{op(0, 1, set("a"), ok(9)), op(2, 3, regInput{Kind: "wipe"}, regOutput{}),
			op(4, 5, read, regOutput{Status: StatusOK}), op(6, 7, set("b"), ok(1))}, true},
	} {
		if got := porcupine.CheckOperations(model, tc.h); got != tc.ok {
			t.Errorf("%s: linearizable = %v, want %v", tc.name, got, tc.ok)
		}
	}
}

func TestNonLinearizableHistoryWritesVisualization(t *testing.T) {
	a := goodAnalysis()
	a.Lines = append(a.Lines, Line{T: LineCall, Node: "n1", ID: 99, At: 5000, Kind: OpRead, Key: "k0"},
		Line{T: LineReturn, Node: "n1", ID: 99, At: 5001, Kind: OpRead, Key: "k0", Status: StatusOK, Present: true, Ver: 1, Val: "a"})
	a.prepare()
	dir := t.TempDir()
	r := a.checkLinearizable(dir, 7, 10*time.Second)
	if r.Count != 1 || !strings.Contains(r.Violations[0], "visualization") {
		t.Fatalf("result %s", r)
	}
	b, err := os.ReadFile(filepath.Join(dir, "linearizability-seed7.html"))
	if err != nil || !strings.Contains(string(b), "<html") {
		t.Fatalf("visualization: %v", err)
	}
}

func TestDecodersFollowProtocolExamples(t *testing.T) {
	for _, example := range []string{
		"rs2 9f86d081884c7d65 7 1795653386124 c0ffee0000000002 c0ffee0000000001 2 5 2\nhellohi",
		"rs1 9f86d081884c7d65 7 1795653386124 2 5 2\nhellohi", // version 1, still read
	} {
		env, err := wire.DecodeEnvelope(example)
		if err != nil || env.Epoch != "9f86d081884c7d65" || env.First != 7 || len(env.Data) != 2 || env.Data[0] != "hello" || env.Data[1] != "hi" {
			t.Fatalf("envelope %q: %+v, %v", example, env, err)
		}
	}
	chs, err := decodeRecord("m1 2 s 0 1 1 d 7 1 0\na1b")
	if err != nil || len(chs) != 2 || chs[0] != (change{Key: "a", Val: "1"}) || chs[1] != (change{Del: true, Old: 7, Key: "b"}) {
		t.Fatalf("record: %+v, %v", chs, err)
	}
	for _, bad := range []string{"", "rs1 e 1 0 1 5\nhi", "rs3 e 1 0 1 2\nhi", "rs2 e 1 0 1 2\nhi", "rs1 e 0 0 1 2\nhi"} {
		if _, err := wire.DecodeEnvelope(bad); err == nil {
			t.Errorf("envelope %q decoded", bad)
		}
	}
}

// drop removes the i-th event (1-based) of node n1's stream kind.
func drop(lines []Line, kind string, i int) []Line {
	var out []Line
	n := 0
	for _, l := range lines {
		if l.T == LineEvent && l.Kind == kind {
			n++
			if n == i {
				continue
			}
		}
		out = append(out, l)
	}
	return out
}

// dup repeats the i-th event of a stream kind right after it.
func dup(lines []Line, kind string, i int) []Line {
	var out []Line
	n := 0
	for _, l := range lines {
		out = append(out, l)
		if l.T == LineEvent && l.Kind == kind {
			n++
			if n == i {
				out = append(out, l)
			}
		}
	}
	return out
}

func edit(lines []Line, kind string, i int, f func(*Line)) {
	n := 0
	for j := range lines {
		if lines[j].T == LineEvent && lines[j].Kind == kind {
			n++
			if n == i {
				f(&lines[j])
			}
		}
	}
}

// The entry points: hand-made FromNow streams and SSE clients over goodAnalysis's history.
// There, pub x is invoked at 1060 (C:1), pub y at 1070 (C:2), and the delete of k0 at 1050
// (E:3); Redis's heads are E:3 and C:2.

// nowProbe returns the lines of a FromNow probe of n1 set up at setUp, with its events and,
// unless end is nil, its end.
func nowProbe(kind string, gen int, setUp int64, evs []Line, end *Line) []Line {
	lines := []Line{{T: LineStart, Node: "n1", Kind: kind, Gen: gen, At: setUp}}
	for _, ev := range evs {
		ev.T, ev.Node, ev.Kind, ev.Gen = LineEvent, "n1", kind, gen
		if ev.At == 0 {
			ev.At = setUp + 100
		}
		lines = append(lines, ev)
	}
	if end != nil {
		end.T, end.Node, end.Kind, end.Gen, end.At = LineEnd, "n1", kind, gen, setUp+200
		lines = append(lines, *end)
	}
	return lines
}

func msg(epoch string, seq uint64, id string) Line { return Line{Epoch: epoch, Ver: seq, Val: id} }

func reached(epoch string, seq uint64) *Line {
	return &Line{Status: EndReached, Epoch: epoch, Ver: seq}
}

// sseLines returns the lines of SSE client s1 of the channel: a first connection from now
// that starts after C:1 at 1063, then message C:2, then a resume after C:2.
func sseLines() []Line {
	return []Line{
		{T: LineConnect, Node: "s1", Kind: StreamSSEChan, At: 1062, Key: "n1"},
		{T: LineSSEID, Node: "s1", Kind: StreamSSEChan, At: 1063, SID: "C:1"},
		{T: LineEvent, Node: "s1", Kind: StreamSSEChan, At: 1080, SID: "C:2", Epoch: "C", Ver: 2, Val: "y"},
		{T: LineConnect, Node: "s1", Kind: StreamSSEChan, At: 1090, Key: "p1", Val: "C:2"},
		{T: LineSSEID, Node: "s1", Kind: StreamSSEChan, At: 1091, SID: "C:2"},
	}
}

// withEntryPoints adds to goodAnalysis sound FromNow probes (a subscription set up between
// the two publishes, a watch set up before the delete, one that stopped before anything
// came) and an SSE client.
func withEntryPoints(a *Analysis) *Analysis {
	a.Lines = append(a.Lines, nowProbe(StreamNowSub, 1, 1065, []Line{msg("C", 2, "y")}, reached("C", 2))...)
	a.Lines = append(a.Lines, nowProbe(StreamNowWatch, 2, 1045, []Line{{Epoch: "E", Ver: 3, Key: "k0", Del: true, Old: 1}}, reached("E", 3))...)
	a.Lines = append(a.Lines, nowProbe(StreamNowEvents, 3, 1065, nil, &Line{Status: EndUnreached})...)
	a.Lines = append(a.Lines, sseLines()...)
	return a
}

func TestEntryPointCheckersPassSoundHistories(t *testing.T) {
	if got := violations(t, withEntryPoints(goodAnalysis())); len(got) > 0 {
		t.Fatalf("a sound history failed %v", got)
	}
}

func TestEntryPointCheckersCatchBrokenHistories(t *testing.T) {
	for _, tc := range []struct {
		name   string
		want   string
		break_ func(a *Analysis)
	}{
		{"FromNow subscription misses a message published after its set-up", "from-now", func(a *Analysis) {
			// Set up before pub y, it reached the head C:2 without delivering y: the start was
			// fixed after Subscribe returned.
			a.Lines = append(a.Lines, nowProbe(StreamNowSub, 4, 1065, nil, reached("C", 2))...)
		}},
		{"FromNow watch misses a delete invoked after its set-up", "from-now", func(a *Analysis) {
			a.Lines = append(a.Lines, nowProbe(StreamNowMapWatch, 4, 1045, []Line{{Epoch: "E", Ver: 4, Key: "k1", Val: "d"}}, nil)...)
			a.Redis.MapLog[4] = change{Key: "k1", Val: "d"} // a later write it did deliver
			a.Lines = append(a.Lines, Line{T: LineCall, Node: "n1", ID: 97, At: 1200, Kind: OpSet, Key: "k1", Val: "d"})
		}},
		{"FromNow stream starts before it claims: the message it skipped is found by its successor", "from-now", func(a *Analysis) {
			// Not reached, but it delivered C:2 without C:1 while set up before x was invoked.
			a.Lines = append(a.Lines, nowProbe(StreamNowEvents, 4, 1055, []Line{msg("C", 2, "y")}, nil)...)
		}},
		{"FromNow stream with a gap", "from-now", func(a *Analysis) {
			a.Lines = append(a.Lines, nowProbe(StreamNowWatch, 4, 1005, []Line{
				{Epoch: "E", Ver: 1, Key: "k0", Val: "a"}, {Epoch: "E", Ver: 3, Key: "k0", Del: true, Old: 1}}, reached("E", 3))...)
		}},
		{"FromNow stream with a duplicate", "from-now", func(a *Analysis) {
			a.Lines = append(a.Lines, nowProbe(StreamNowSub, 4, 1065, []Line{msg("C", 2, "y"), msg("C", 2, "y")}, reached("C", 2))...)
		}},
		{"FromNow stream ends on its own", "from-now", func(a *Analysis) {
			a.Lines = append(a.Lines, nowProbe(StreamNowSub, 4, 1065, []Line{msg("C", 2, "y"), {Err: "boom"}}, nil)...)
		}},
		{"FromNow stream reset with persistence", "from-now", func(a *Analysis) {
			a.Lines = append(a.Lines, nowProbe(StreamNowSub, 4, 1065, []Line{{Epoch: "C2",
				Reset: &ResetInfo{Reason: "epoch-changed", From: 2, Open: true, OldEpoch: "C", NewEpoch: "C2"}}}, nil)...)
		}},
		{"SSE duplicate", "sse", func(a *Analysis) { a.Lines = append(a.Lines, sseLines()[2]) }},
		{"SSE gap without a reset", "sse", func(a *Analysis) {
			a.Lines = append(a.Lines, Line{T: LineConnect, Node: "s2", Kind: StreamSSEChan, At: 1001},
				Line{T: LineSSEID, Node: "s2", Kind: StreamSSEChan, At: 1002, SID: "C:0"},
				Line{T: LineEvent, Node: "s2", Kind: StreamSSEChan, At: 1080, SID: "C:2", Epoch: "C", Ver: 2, Val: "y"})
		}},
		{"SSE id without its epoch", "sse", func(a *Analysis) { a.Lines[len(a.Lines)-3].SID = "2" }},
		{"SSE resumed elsewhere than Last-Event-ID", "sse", func(a *Analysis) { a.Lines[len(a.Lines)-1].SID = "C:1" }},
		{"SSE malformed event", "sse", func(a *Analysis) {
			a.Lines = append(a.Lines, Line{T: LineEvent, Node: "s1", Kind: StreamSSEChan, At: 1095, SID: "C:3", Status: statusMalformed, Err: "event type \"x\""})
		}},
		{"SSE stream short of the head", "sse", func(a *Analysis) { a.Lines = drop(a.Lines, StreamSSEChan, 1) }},
		{"SSE FromNow start fixed too late", "from-now", func(a *Analysis) {
			// The first connection said it starts after C:1 at 1063, yet it delivered nothing
			// of C:2 … and C:3, invoked at 1070 and 1075, came first: C:2 was skipped.
			a.Redis.ChanLog[3], a.Redis.ChanHead = "z", 3
			a.Lines = append(a.Lines,
				Line{T: LineCall, Node: "n1", ID: 96, At: 1075, Kind: OpPub, Val: "z"},
				Line{T: LineReturn, Node: "n1", ID: 96, At: 1076, Kind: OpPub, Val: "z", Status: StatusOK, Epoch: "C", Ver: 3},
				Line{T: LineConnect, Node: "s2", Kind: StreamSSEChan, At: 1062},
				Line{T: LineSSEID, Node: "s2", Kind: StreamSSEChan, At: 1063, SID: "C:1"},
				Line{T: LineEvent, Node: "s2", Kind: StreamSSEChan, At: 1080, SID: "C:3", Epoch: "C", Ver: 3, Val: "z"})
		}},
		{"reset range upside down", "reset-ranges", func(a *Analysis) {
			a.Lines = append(a.Lines, nowProbe(StreamNowSub, 4, 1065, []Line{{Epoch: "C", Ver: 2,
				Reset: &ResetInfo{Reason: "trimmed", From: 5, To: 3, OldEpoch: "C", NewEpoch: "C"}}}, nil)...)
		}},
		{"epoch-changed reset that is neither open nor bounded", "reset-ranges", func(a *Analysis) {
			a.Lines = append(a.Lines, Line{T: LineEvent, Node: "s1", Kind: StreamSSEChan, At: 1095, SID: "C2:0", Epoch: "C2",
				Reset: &ResetInfo{Reason: "epoch-changed", From: 3, OldEpoch: "C", NewEpoch: "C2"}})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := withEntryPoints(goodAnalysis())
			tc.break_(a)
			got := violations(t, a)
			if !slices.Contains(got, tc.want) {
				t.Fatalf("checker %s did not fail; failed: %v", tc.want, got)
			}
		})
	}
}

// wipeEntryPoints: goodAnalysis in the wipe scenario, Redis restarted empty at 4000–4100, a
// new channel history C2 holding w (invoked at 4250); SSE client s1 was cut at C:2 and
// resumes after the restart; probe 5, set up at 1065, follows C then C2.
func wipeEntryPoints(resumeReset bool) *Analysis {
	a := withEntryPoints(goodAnalysis())
	a.Scenario = ScenarioWipe
	a.Wipes = []wipeWindow{{KillStart: 4000, RestartDone: 4100}}
	a.Redis.ChanEpoch, a.Redis.ChanHead, a.Redis.ChanLog = "C2", 1, map[uint64]string{1: "w"}
	reset := &ResetInfo{Reason: "epoch-changed", From: 3, Open: true, OldEpoch: "C", NewEpoch: "C2"}
	for i := range a.Lines { // the older probes stopped before the restart
		if a.Lines[i].T == LineEnd {
			a.Lines[i].Status = EndUnreached
		}
	}
	a.Lines = append(a.Lines,
		Line{T: LineEvent, Node: "n1", Kind: StreamSub, At: 4200, Epoch: "C2", Reset: reset},
		Line{T: LineEvent, Node: "n1", Kind: StreamSub, At: 4300, Epoch: "C2", Ver: 1, Val: "w"},
		Line{T: LineCall, Node: "n1", ID: 50, At: 4250, Kind: OpPub, Val: "w"},
		Line{T: LineReturn, Node: "n1", ID: 50, At: 4260, Kind: OpPub, Val: "w", Status: StatusOK, Epoch: "C2", Ver: 1},
		Line{T: LineConnect, Node: "s1", Kind: StreamSSEChan, At: 4400, Key: "n1", Val: "C:2"},
		Line{T: LineSSEID, Node: "s1", Kind: StreamSSEChan, At: 4401, SID: "C:2"})
	if resumeReset {
		a.Lines = append(a.Lines, Line{T: LineEvent, Node: "s1", Kind: StreamSSEChan, At: 4402, SID: "C2:0", Epoch: "C2", Reset: reset})
	}
	a.Lines = append(a.Lines, Line{T: LineEvent, Node: "s1", Kind: StreamSSEChan, At: 4403, SID: "C2:1", Epoch: "C2", Ver: 1, Val: "w"})
	a.Lines = append(a.Lines, nowProbe(StreamNowSub, 5, 1065, []Line{
		msg("C", 2, "y"), {At: 4200, Epoch: "C2", Reset: reset}, {At: 4300, Epoch: "C2", Ver: 1, Val: "w"}}, reached("C2", 1))...)
	return a
}

func TestEntryPointsAcrossAWipe(t *testing.T) {
	t.Run("a reset before the new epoch", func(t *testing.T) {
		if got := violations(t, wipeEntryPoints(true)); len(got) > 0 {
			t.Fatalf("a sound history failed %v", got)
		}
	})
	t.Run("SSE resume without a reset", func(t *testing.T) {
		got := violations(t, wipeEntryPoints(false))
		if !slices.Contains(got, "sse-resume") {
			t.Fatalf("sse-resume did not fail; failed: %v", got)
		}
	})
	t.Run("a FromNow stream's reset covers what Redis lost", func(t *testing.T) {
		// y (C:2) was invoked after the set-up and never delivered, but the reset covers it.
		a := wipeEntryPoints(true)
		a.Lines = append(a.Lines, nowProbe(StreamNowSub, 6, 1065, []Line{
			{At: 4200, Epoch: "C2", Reset: &ResetInfo{Reason: "epoch-changed", From: 2, Open: true, OldEpoch: "C", NewEpoch: "C2"}},
			{At: 4300, Epoch: "C2", Ver: 1, Val: "w"}}, reached("C2", 1))...)
		if got := violations(t, a); len(got) > 0 {
			t.Fatalf("a sound history failed %v", got)
		}
	})
	t.Run("a FromNow stream that stops as a reset takes it past the head's lost epoch", func(t *testing.T) {
		// The head read at its stop was C:2; then the reset said C was lost from 3 on, and it
		// stopped there: it owes nothing of C2, where w was invoked after its set-up.
		a := wipeEntryPoints(true)
		a.Lines = append(a.Lines, nowProbe(StreamNowSub, 6, 1065, []Line{msg("C", 2, "y"),
			{At: 4200, Epoch: "C2", Reset: &ResetInfo{Reason: "epoch-changed", From: 3, Open: true, OldEpoch: "C", NewEpoch: "C2"}}},
			&Line{Status: EndReached, Epoch: "C", Ver: 2})...)
		if got := violations(t, a); len(got) > 0 {
			t.Fatalf("a sound history failed %v", got)
		}
	})
	t.Run("a FromNow stream's reset that starts too late", func(t *testing.T) {
		a := wipeEntryPoints(true)
		a.Lines = append(a.Lines, nowProbe(StreamNowSub, 6, 1065, []Line{
			{At: 4200, Epoch: "C2", Reset: &ResetInfo{Reason: "epoch-changed", From: 3, Open: true, OldEpoch: "C", NewEpoch: "C2"}},
			{At: 4300, Epoch: "C2", Ver: 1, Val: "w"}}, reached("C2", 1))...)
		if got := violations(t, a); !slices.Contains(got, "from-now") {
			t.Fatalf("from-now did not fail; failed: %v", got)
		}
	})
}

// TestDecodeSSE: the client decodes the gateway's events as node's package doc writes them.
func TestDecodeSSE(t *testing.T) {
	for _, tc := range []struct {
		kind, typ, data string
		want            Line
		bad             bool
	}{
		{StreamSSEChan, "", `{"seq":7,"epoch":"E","pos":"E:7","time":"t","data":"n1.0.p3|xx"}`, Line{Ver: 7, Epoch: "E", Val: "n1.0.p3"}, false},
		{StreamSSEChan, "", `{"seq":7,"epoch":"E","data":"bjEuMC5wM3x4eA==","base64":true}`, Line{Ver: 7, Epoch: "E", Val: "n1.0.p3"}, false},
		{StreamSSEMap, "", `{"seq":9,"epoch":"E","changes":[{"op":"set","key":"k1","value":"v","version":9,"old_version":4}]}`,
			Line{Ver: 9, Epoch: "E", Key: "k1", Val: "v", Old: 4}, false},
		{StreamSSEMap, "", `{"seq":9,"epoch":"E","changes":[{"op":"del","key":"k1","version":9,"old_version":4}]}`,
			Line{Ver: 9, Epoch: "E", Key: "k1", Del: true, Old: 4}, false},
		{StreamSSEChan, "reset", `{"seq":0,"epoch":"F","reset":{"reason":"epoch-changed","from":4,"to":null,"old_epoch":"E","new_epoch":"F"}}`,
			Line{Epoch: "F", Reset: &ResetInfo{Reason: "epoch-changed", From: 4, Open: true, OldEpoch: "E", NewEpoch: "F"}}, false},
		{StreamSSEChan, "reset", `{"seq":9,"epoch":"E","reset":{"reason":"trimmed","from":4,"to":9}}`,
			Line{Ver: 9, Epoch: "E", Reset: &ResetInfo{Reason: "trimmed", From: 4, To: 9}}, false},
		{StreamSSEChan, "other", `{}`, Line{}, true},
		{StreamSSEChan, "", `not json`, Line{}, true},
		{StreamSSEMap, "", `{"seq":9,"epoch":"E","changes":[]}`, Line{}, true},
	} {
		got, err := decodeSSE(tc.kind, tc.typ, tc.data)
		if (err != nil) != tc.bad {
			t.Errorf("%s %q: error %v", tc.typ, tc.data, err)
			continue
		}
		if tc.bad {
			continue
		}
		if (got.Reset == nil) != (tc.want.Reset == nil) || (got.Reset != nil && *got.Reset != *tc.want.Reset) {
			t.Errorf("%q: reset %+v, want %+v", tc.data, got.Reset, tc.want.Reset)
		}
		got.Reset, tc.want.Reset = nil, nil
		if got != tc.want {
			t.Errorf("%q: %+v, want %+v", tc.data, got, tc.want)
		}
	}
}

// The failover rules (check_failover.go) over a hand-made history: node n1 writes and
// publishes; a failover that can lose writes runs from 2000 to 3000 and loses what Redis
// acknowledged during it (set k0=x at 3, set k1=y at 4, publish l1 at C:3); the new master
// then hands out seq 3 again (set k0=c, publish z) and 4 (publish w). n1's watch and
// subscription delivered the lost writes and were told with rewound resets; its replica
// reloaded. Redis's heads are E:3 and C:4.
func failoverAnalysis() *Analysis {
	rf := &redisFinal{
		MapEpoch: "E", MapHead: 3, MapFirst: 1,
		MapLog: map[uint64]change{
			1: {Key: "k0", Val: "a"},
			2: {Key: "k1", Val: "b"},
			3: {Key: "k0", Val: "c", Old: 1},
		},
		State:     map[string]Stored{"k0": {Ver: 3, Val: "c"}, "k1": {Ver: 2, Val: "b"}},
		ChanEpoch: "C", ChanHead: 4, ChanFirst: 1,
		ChanLog: map[uint64]string{1: "x1", 2: "x2", 3: "z", 4: "w"},
	}
	rf.DX, rf.DY = stateDigest(rf.State)
	rf.N = 2
	var lines []Line
	id := uint64(0)
	op := func(at int64, kind, key, val string, ret Line) {
		id++
		lines = append(lines, Line{T: LineCall, Node: "n1", ID: id, At: at, Kind: kind, Key: key, Val: val})
		ret.T, ret.Node, ret.ID, ret.At, ret.Kind, ret.Key = LineReturn, "n1", id, at+5, kind, key
		if kind == OpPub {
			ret.Val = val
		}
		lines = append(lines, ret)
	}
	op(1000*ms, OpSet, "k0", "a", Line{Status: StatusOK, Ver: 1})
	op(1010*ms, OpCAS, "k1", "b", Line{Status: StatusOK, Ver: 2})
	op(1020*ms, OpPub, "", "x1", Line{Status: StatusOK, Epoch: "C", Ver: 1})
	op(1030*ms, OpPub, "", "x2", Line{Status: StatusOK, Epoch: "C", Ver: 2})
	op(2100*ms, OpSet, "k0", "x", Line{Status: StatusOK, Ver: 3}) // lost
	op(2110*ms, OpSet, "k1", "y", Line{Status: StatusOK, Ver: 4}) // lost
	op(2120*ms, OpPub, "", "l1", Line{Status: StatusOK, Epoch: "C", Ver: 3})
	op(2150*ms, OpRead, "k0", "", Line{Status: StatusOK, Present: true, Ver: 3, Val: "x"}) // of the lost history, during the failover
	op(3100*ms, OpSet, "k0", "c", Line{Status: StatusOK, Ver: 3})
	op(3110*ms, OpPub, "", "z", Line{Status: StatusOK, Epoch: "C", Ver: 3})
	op(3200*ms, OpPub, "", "w", Line{Status: StatusOK, Epoch: "C", Ver: 4})
	ev := func(kind string, at int64, epoch string, seq uint64, l Line) Line {
		l.T, l.Node, l.Kind, l.At, l.Epoch, l.Ver = LineEvent, "n1", kind, at, epoch, seq
		if kind == StreamOnChange {
			l.Gen = 1
		}
		return l
	}
	rewound := func(from, to uint64, epoch string) Line {
		return Line{Reset: &ResetInfo{Reason: string(channel.ResetRewound), From: from, To: to, OldEpoch: epoch, NewEpoch: epoch}}
	}
	for _, kind := range []string{StreamWatch, StreamOnChange} {
		lines = append(lines,
			ev(kind, 1005*ms, "E", 1, Line{Key: "k0", Val: "a"}),
			ev(kind, 1015*ms, "E", 2, Line{Key: "k1", Val: "b"}),
			ev(kind, 2105*ms, "E", 3, Line{Key: "k0", Val: "x", Old: 1}),
			ev(kind, 2115*ms, "E", 4, Line{Key: "k1", Val: "y", Old: 2}))
	}
	lines = append(lines,
		ev(StreamWatch, 2500*ms, "E", 2, rewound(3, 4, "E")),
		ev(StreamWatch, 3105*ms, "E", 3, Line{Key: "k0", Val: "c", Old: 1}),
		ev(StreamOnChange, 2600*ms, "E", 2, Line{Reset: &ResetInfo{Reason: string(channel.ResetReloaded), From: 1, Open: true, OldEpoch: "E", NewEpoch: "E"}}),
		ev(StreamOnChange, 3105*ms, "E", 3, Line{Key: "k0", Val: "c", Old: 1}),
		ev(StreamSub, 1025*ms, "C", 1, Line{Val: "x1"}),
		ev(StreamSub, 1035*ms, "C", 2, Line{Val: "x2"}),
		ev(StreamSub, 2125*ms, "C", 3, Line{Val: "l1"}),
		ev(StreamSub, 2500*ms, "C", 2, rewound(3, 3, "C")),
		ev(StreamSub, 3115*ms, "C", 3, Line{Val: "z"}),
		ev(StreamSub, 3205*ms, "C", 4, Line{Val: "w"}))
	return &Analysis{
		Scenario: ScenarioCluster, Lines: lines, Redis: rf, Nodes: []string{"n1"},
		Failovers: []failoverWindow{{Kind: FaultClusterKill, Start: 2000 * ms, End: 3000 * ms, Lossy: true}},
		Finals: map[string]*Final{"n1": {Converged: true, State: map[string]Stored{"k0": {Ver: 3, Val: "c"}, "k1": {Ver: 2, Val: "b"}},
			Verified: true, Match: true}},
	}
}

// ms is a millisecond of the hand-made failover histories, whose times are Unix ns as in a run.
const ms = int64(time.Millisecond)

// laterProbe returns a FromNow subscription of n1 set up at setUp with evs, which reached the
// head C:4 at 3300 ms, after the failover.
func laterProbe(setUp int64, evs []Line) []Line {
	lines := nowProbe(StreamNowSub, 7, setUp, evs, reached("C", 4))
	lines[len(lines)-1].At = 3300 * ms
	return lines
}

// failedChecks runs every checker and returns the names of those that failed, the known
// issues included (their results are marked Known).
func failedChecks(t *testing.T, a *Analysis) (failed, known []string) {
	t.Helper()
	results := append(a.Check(), a.checkLinearizable(t.TempDir(), 0, 10*time.Second))
	for _, r := range results {
		if r.Count == 0 {
			continue
		}
		t.Logf("%s", r)
		if r.Known {
			known = append(known, r.Name)
		} else {
			failed = append(failed, r.Name)
		}
	}
	return failed, known
}

func TestFailoverCheckersPassASoundHistory(t *testing.T) {
	a := failoverAnalysis()
	if failed, known := failedChecks(t, a); len(failed)+len(known) > 0 {
		t.Fatalf("a sound failover history failed %v, known issues %v", failed, known)
	}
	f := a.figures()
	if f.Lost != 3 || f.LostToldAll != 3 || f.LostUnseen != 0 || f.Rewound != 2 || f.Dropped != 3 {
		t.Fatalf("lost %d (told all %d, unseen %d), rewound %d, left out of linearizability %d; want 3 (3, 0), 2, 3",
			f.Lost, f.LostToldAll, f.LostUnseen, f.Rewound, f.Dropped)
	}

	t.Run("read-your-writes of a write a failover lost", func(t *testing.T) {
		// n1's replica followed the new master past seq 3 when set k0=x returned.
		a := failoverAnalysis()
		a.Lines = append(a.Lines, Line{T: LineViolation, Node: "n1", Kind: ViolationRYW, ID: 5, Key: "k0", Ver: 3, At: 2106 * ms, Err: "read-your-writes: …"})
		if failed, known := failedChecks(t, a); len(failed)+len(known) > 0 {
			t.Fatalf("failed %v, known issues %v", failed, known)
		}
	})
	t.Run("a write of unknown outcome that only a read of the lost history saw", func(t *testing.T) {
		// cas(k1=q if 4) never returned; the old master applied it at 5 over the lost y at 4,
		// and a read during the failover saw q there. Both are of the lost history.
		a := failoverAnalysis()
		a.Lines = append(a.Lines,
			Line{T: LineCall, Node: "n1", ID: 100, At: 2130 * ms, Kind: OpCAS, Key: "k1", Val: "q", Exp: 4},
			Line{T: LineCall, Node: "n1", ID: 101, At: 2140 * ms, Kind: OpRead, Key: "k1"},
			Line{T: LineReturn, Node: "n1", ID: 101, At: 2145 * ms, Kind: OpRead, Key: "k1", Status: StatusOK, Present: true, Ver: 5, Val: "q"})
		if failed, known := failedChecks(t, a); len(failed)+len(known) > 0 {
			t.Fatalf("failed %v, known issues %v", failed, known)
		}
	})
	t.Run("an SSE client of the new history resumed by seq, told from where the histories part", func(t *testing.T) {
		// It delivered z at C:3 from the new master, then resumed after C:3 at a gateway that
		// could not tell which C:3 it had: a rewound reset from 3 (where l1 was lost) to 3, and
		// the log again from 3.
		a := failoverAnalysis()
		rw := &ResetInfo{Reason: string(channel.ResetRewound), From: 3, To: 3, OldEpoch: "C", NewEpoch: "C"}
		a.Lines = append(a.Lines,
			Line{T: LineConnect, Node: "s1", Kind: StreamSSEChan, At: 1001 * ms, Key: "n1"},
			Line{T: LineSSEID, Node: "s1", Kind: StreamSSEChan, At: 1002 * ms, SID: "C:0"},
			Line{T: LineEvent, Node: "s1", Kind: StreamSSEChan, At: 1026 * ms, SID: "C:1", Epoch: "C", Ver: 1, Val: "x1"},
			Line{T: LineEvent, Node: "s1", Kind: StreamSSEChan, At: 1036 * ms, SID: "C:2", Epoch: "C", Ver: 2, Val: "x2"},
			Line{T: LineEvent, Node: "s1", Kind: StreamSSEChan, At: 3112 * ms, SID: "C:3", Epoch: "C", Ver: 3, Val: "z"},
			Line{T: LineConnect, Node: "s1", Kind: StreamSSEChan, At: 3300 * ms, Key: "n1", Val: "C:3"},
			Line{T: LineSSEID, Node: "s1", Kind: StreamSSEChan, At: 3301 * ms, SID: "C:3"},
			Line{T: LineEvent, Node: "s1", Kind: StreamSSEChan, At: 3302 * ms, SID: "C:2", Epoch: "C", Ver: 2, Reset: rw},
			Line{T: LineEvent, Node: "s1", Kind: StreamSSEChan, At: 3303 * ms, SID: "C:3", Epoch: "C", Ver: 3, Val: "z"},
			Line{T: LineEvent, Node: "s1", Kind: StreamSSEChan, At: 3304 * ms, SID: "C:4", Epoch: "C", Ver: 4, Val: "w"})
		if failed, known := failedChecks(t, a); len(failed)+len(known) > 0 {
			t.Fatalf("failed %v, known issues %v", failed, known)
		}
	})
	t.Run("a publish lost before any stream delivered it", func(t *testing.T) {
		// Acknowledged at C:4 during the failover, its pub/sub copy never arrived: no stream
		// had anything to be told. The new master gave C:4 to w.
		a := failoverAnalysis()
		a.Lines = append(a.Lines, Line{T: LineCall, Node: "n2", ID: 1, At: 2200 * ms, Kind: OpPub, Val: "u"},
			Line{T: LineReturn, Node: "n2", ID: 1, At: 2201 * ms, Kind: OpPub, Val: "u", Status: StatusOK, Epoch: "C", Ver: 4})
		if failed, known := failedChecks(t, a); len(failed)+len(known) > 0 {
			t.Fatalf("failed %v, known issues %v", failed, known)
		}
		if f := a.figures(); f.Lost != 3 || f.LostUnseen != 1 {
			t.Fatalf("lost %d, unseen %d; want 3, 1", f.Lost, f.LostUnseen)
		}
	})
	t.Run("two deletes of a key acknowledged at the same seq, one lost", func(t *testing.T) {
		// The lost history deleted k1 at 4; so did the new master, later, at the same seq.
		a := failoverAnalysis()
		for i := range a.Lines {
			switch l := &a.Lines[i]; {
			case l.Val == "y" && l.T == LineEvent:
				l.Val, l.Del = "", true
			case l.Val == "y" || l.Kind == OpSet && l.Key == "k1":
				l.Kind, l.Val = OpDel, ""
			}
		}
		a.Redis.MapLog[4], a.Redis.MapHead = change{Key: "k1", Del: true, Old: 2}, 4
		delete(a.Redis.State, "k1")
		a.Redis.DX, a.Redis.DY = stateDigest(a.Redis.State)
		a.Redis.N = 1
		a.Finals["n1"].State = map[string]Stored{"k0": {Ver: 3, Val: "c"}}
		a.Lines = append(a.Lines,
			Line{T: LineCall, Node: "n1", ID: 50, At: 3150 * ms, Kind: OpDel, Key: "k1"},
			Line{T: LineReturn, Node: "n1", ID: 50, At: 3151 * ms, Kind: OpDel, Key: "k1", Status: StatusOK, Ver: 4})
		for _, kind := range []string{StreamWatch, StreamOnChange} {
			a.Lines = append(a.Lines, Line{T: LineEvent, Node: "n1", Kind: kind, Gen: map[string]int{StreamOnChange: 1}[kind], At: 3155 * ms,
				Epoch: "E", Ver: 4, Key: "k1", Del: true, Old: 2})
		}
		if failed, known := failedChecks(t, a); len(failed)+len(known) > 0 {
			t.Fatalf("failed %v, known issues %v", failed, known)
		}
	})
}

func TestFailoverCheckersCatchBrokenHistories(t *testing.T) {
	// without removes the stream events of kind at seqs (resets with their position) and
	// returns a.
	without := func(a *Analysis, kind string, reset bool, seqs ...uint64) {
		a.Lines = slices.DeleteFunc(a.Lines, func(l Line) bool {
			return l.T == LineEvent && l.Kind == kind && (l.Reset != nil) == reset && slices.Contains(seqs, l.Ver)
		})
	}
	setReset := func(a *Analysis, kind string, f func(l *Line)) {
		for i := range a.Lines {
			if l := &a.Lines[i]; l.T == LineEvent && l.Kind == kind && l.Reset != nil {
				f(l)
			}
		}
	}
	sse := func(resumeAt uint64) []Line {
		return []Line{
			{T: LineConnect, Node: "s1", Kind: StreamSSEChan, At: 1001 * ms, Key: "n1"},
			{T: LineSSEID, Node: "s1", Kind: StreamSSEChan, At: 1002 * ms, SID: "C:0"},
			{T: LineEvent, Node: "s1", Kind: StreamSSEChan, At: 1026 * ms, SID: "C:1", Epoch: "C", Ver: 1, Val: "x1"},
			{T: LineEvent, Node: "s1", Kind: StreamSSEChan, At: 1036 * ms, SID: "C:2", Epoch: "C", Ver: 2, Val: "x2"},
			{T: LineEvent, Node: "s1", Kind: StreamSSEChan, At: 2126 * ms, SID: "C:3", Epoch: "C", Ver: 3, Val: "l1"},
			{T: LineConnect, Node: "s1", Kind: StreamSSEChan, At: 3300 * ms, Key: "n1", Val: fmt.Sprintf("C:%d", resumeAt)},
			{T: LineSSEID, Node: "s1", Kind: StreamSSEChan, At: 3301 * ms, SID: fmt.Sprintf("C:%d", resumeAt)},
			{T: LineEvent, Node: "s1", Kind: StreamSSEChan, At: 3302 * ms, SID: "C:4", Epoch: "C", Ver: 4, Val: "w"},
		}
	}
	for _, tc := range []struct {
		name   string
		want   string // a checker that must fail
		break_ func(a *Analysis)
	}{
		{"a stream delivered a lost write and was never told", "rewinds", func(a *Analysis) {
			without(a, StreamWatch, true, 2) // the rewound reset
			without(a, StreamWatch, false, 3)
			a.Lines = append(a.Lines, Line{T: LineEvent, Node: "n1", Kind: StreamWatch, At: 3105 * ms, Epoch: "E", Ver: 5, Key: "k0", Val: "c"})
		}},
		{"the new history at the seqs delivered, without a reset", "streams", func(a *Analysis) {
			without(a, StreamSub, true, 2)
		}},
		{"a rewound reset that starts before the histories part", "rewinds", func(a *Analysis) {
			setReset(a, StreamWatch, func(l *Line) { l.Reset.From, l.Ver = 2, 1 })
			a.Lines = append(a.Lines, Line{T: LineEvent, Node: "n1", Kind: StreamWatch, At: 3000 * ms, Epoch: "E", Ver: 2, Key: "k1", Val: "b"})
		}},
		{"a rewound reset short of what was delivered", "rewinds", func(a *Analysis) {
			setReset(a, StreamWatch, func(l *Line) { l.Reset.To = 3 })
		}},
		{"a rewound reset before any failover began", "rewinds", func(a *Analysis) {
			a.Failovers[0].Start = 2550 * ms
		}},
		{"a rewound reset of another epoch", "rewinds", func(a *Analysis) {
			setReset(a, StreamSub, func(l *Line) { l.Reset.NewEpoch = "D" })
		}},
		{"writes lost where no failover can lose any", "acked-writes", func(a *Analysis) {
			a.Failovers[0].Lossy = false // a manual failover or a slot migration
		}},
		{"an acknowledged publish lost long before the failover, that no stream delivered", "acked-writes", func(a *Analysis) {
			a.Lines = append(a.Lines, Line{T: LineCall, Node: "n1", ID: 90, At: 500 * ms, Kind: OpPub, Val: "old"},
				Line{T: LineReturn, Node: "n1", ID: 90, At: 505 * ms, Kind: OpPub, Val: "old", Status: StatusOK, Epoch: "C", Ver: 2})
		}},
		{"a lost write a stream delivered, outside any reported range", "acked-writes", func(a *Analysis) {
			// The subscription delivered l1 at C:3, was not told, and went on with w at C:4.
			without(a, StreamSub, true, 2)
			a.Lines = slices.DeleteFunc(a.Lines, func(l Line) bool { return l.Kind == StreamSub && l.Val == "z" })
		}},
		{"a replica that reloads before any failover", "streams", func(a *Analysis) {
			setReset(a, StreamOnChange, func(l *Line) { l.At = 1900 * ms })
		}},
		{"read-your-writes of a write that survived", "versions", func(a *Analysis) {
			a.Lines = append(a.Lines, Line{T: LineViolation, Node: "n1", Kind: ViolationRYW, ID: 1, Key: "k0", Ver: 1, At: 1006 * ms, Err: "read-your-writes: …"})
		}},
		{"a replica that keeps a lost write", "replicas", func(a *Analysis) {
			a.Finals["n1"].State = map[string]Stored{"k0": {Ver: 3, Val: "x"}, "k1": {Ver: 4, Val: "y"}}
		}},
		{"a read of a lost write after the failover", "linearizable", func(a *Analysis) {
			a.Lines = append(a.Lines, Line{T: LineCall, Node: "n1", ID: 91, W: 1, At: 3500 * ms, Kind: OpRead, Key: "k0"},
				Line{T: LineReturn, Node: "n1", ID: 91, W: 1, At: 3505 * ms, Kind: OpRead, Key: "k0", Status: StatusOK, Present: true, Ver: 3, Val: "x"})
		}},
		{"a conflict that saw a lost version before the new master handed it out again", "linearizable", func(a *Analysis) {
			a.Lines = append(a.Lines, Line{T: LineCall, Node: "n1", ID: 92, W: 1, At: 3050 * ms, Kind: OpCAS, Key: "k1", Val: "q", Exp: 2},
				Line{T: LineReturn, Node: "n1", ID: 92, W: 1, At: 3055 * ms, Kind: OpCAS, Key: "k1", Status: StatusConflict, Actual: 4})
		}},
		{"an SSE client that resumed from a surviving position and was never told", "rewinds", func(a *Analysis) {
			a.Lines = append(a.Lines, sse(3)...)
			for i := range a.Lines { // it resumes after C:2, which survived, with C:3 delivered and lost
				if l := &a.Lines[i]; l.Node == "s1" && l.At >= 3300*ms && l.T != LineEvent {
					l.Val, l.SID = strings.Replace(l.Val, "C:3", "C:2", 1), strings.Replace(l.SID, "C:3", "C:2", 1)
				}
			}
			a.Lines = append(a.Lines, Line{T: LineEvent, Node: "s1", Kind: StreamSSEChan, At: 3301 * ms, SID: "C:3", Epoch: "C", Ver: 3, Val: "z"})
			slices.SortStableFunc(a.Lines, func(x, y Line) int { return cmp.Compare(x.At, y.At) })
		}},
		{"a FromNow probe set up before the failover that skips a message", "from-now", func(a *Analysis) {
			a.Lines = append(a.Lines, laterProbe(1500*ms, []Line{{At: 3205 * ms, Epoch: "C", Ver: 4, Val: "w"}})...)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := failoverAnalysis()
			tc.break_(a)
			if failed, _ := failedChecks(t, a); !slices.Contains(failed, tc.want) {
				t.Fatalf("checker %s did not fail; failed: %v", tc.want, failed)
			}
		})
	}
}

// TestFailoverKnownIssues: the library's known issues (check_failover.go) are counted apart,
// and only for their exact pattern.
func TestFailoverKnownIssues(t *testing.T) {
	t.Run("an SSE client resumed from a lost position", func(t *testing.T) {
		a := failoverAnalysis()
		a.Lines = append(a.Lines,
			Line{T: LineConnect, Node: "s1", Kind: StreamSSEChan, At: 1001 * ms, Key: "n1"},
			Line{T: LineSSEID, Node: "s1", Kind: StreamSSEChan, At: 1002 * ms, SID: "C:0"},
			Line{T: LineEvent, Node: "s1", Kind: StreamSSEChan, At: 1026 * ms, SID: "C:1", Epoch: "C", Ver: 1, Val: "x1"},
			Line{T: LineEvent, Node: "s1", Kind: StreamSSEChan, At: 1036 * ms, SID: "C:2", Epoch: "C", Ver: 2, Val: "x2"},
			Line{T: LineEvent, Node: "s1", Kind: StreamSSEChan, At: 2126 * ms, SID: "C:3", Epoch: "C", Ver: 3, Val: "l1"},
			// Resumed after C:3 (l1, lost): the gateway cannot tell, and goes on with C:4.
			Line{T: LineConnect, Node: "s1", Kind: StreamSSEChan, At: 3300 * ms, Key: "n1", Val: "C:3"},
			Line{T: LineSSEID, Node: "s1", Kind: StreamSSEChan, At: 3301 * ms, SID: "C:3"},
			Line{T: LineEvent, Node: "s1", Kind: StreamSSEChan, At: 3302 * ms, SID: "C:4", Epoch: "C", Ver: 4, Val: "w"})
		failed, known := failedChecks(t, a)
		if len(failed) > 0 || !slices.Equal(known, []string{issueResume}) {
			t.Fatalf("failed %v, known issues %v; want none and %s", failed, known, issueResume)
		}
	})
	t.Run("a FromNow probe set up on the history the failover lost", func(t *testing.T) {
		// Set up at 2300 after C:3 (l1, lost); the new master writes z at C:3 (invoked at
		// 3110) and w at C:4; the probe goes on after seq 3 and delivers w only.
		a := failoverAnalysis()
		a.Lines = append(a.Lines, laterProbe(2300*ms, []Line{{At: 3205 * ms, Epoch: "C", Ver: 4, Val: "w"}})...)
		failed, known := failedChecks(t, a)
		if len(failed) > 0 || !slices.Equal(known, []string{issueLostStart}) {
			t.Fatalf("failed %v, known issues %v; want none and %s", failed, known, issueLostStart)
		}
	})
	t.Run("a FromNow probe set up on the lost history, rewound first", func(t *testing.T) {
		a := failoverAnalysis()
		a.Lines = append(a.Lines, laterProbe(2300*ms, []Line{
			{At: 2500 * ms, Epoch: "C", Ver: 3, Reset: &ResetInfo{Reason: string(channel.ResetRewound), From: 4, To: 5, OldEpoch: "C", NewEpoch: "C"}},
			{At: 3205 * ms, Epoch: "C", Ver: 4, Val: "w"}})...)
		failed, known := failedChecks(t, a)
		if len(failed) > 0 || !slices.Equal(known, []string{issueLostStart}) {
			t.Fatalf("failed %v, known issues %v; want none and %s", failed, known, issueLostStart)
		}
	})
	t.Run("a rewound reset from the log's oldest message", func(t *testing.T) {
		// A subscription that cannot tell where the histories part below its start announces
		// everything from the log's oldest message and delivers the log again from there.
		a := failoverAnalysis()
		var lines []Line
		for _, l := range a.Lines {
			if l.Kind == StreamSub && l.Reset != nil {
				l.Reset.From, l.Ver = 1, 0
				lines = append(lines, l,
					Line{T: LineEvent, Node: "n1", Kind: StreamSub, At: l.At + 1, Epoch: "C", Ver: 1, Val: "x1"},
					Line{T: LineEvent, Node: "n1", Kind: StreamSub, At: l.At + 2, Epoch: "C", Ver: 2, Val: "x2"})
				continue
			}
			lines = append(lines, l)
		}
		a.Lines = lines
		if failed, known := failedChecks(t, a); len(failed) > 0 || len(known) > 0 {
			t.Fatalf("failed %v, known issues %v; want none", failed, known)
		}
	})
	t.Run("read-your-writes of a write that survived, while the replica stood in the lost history", func(t *testing.T) {
		// n1's replica announced y at 4 (lost) and was not rewound yet when set k0=c returned
		// at 3 from the new master: it showed k0's older version. It reloaded later.
		a := failoverAnalysis()
		a.Lines = slices.DeleteFunc(a.Lines, func(l Line) bool { return l.Kind == StreamOnChange && l.At >= 2600*ms })
		a.Lines = append(a.Lines,
			Line{T: LineViolation, Node: "n1", Kind: ViolationRYW, ID: 9, Key: "k0", Ver: 3, At: 3106 * ms, Err: "read-your-writes: …"},
			Line{T: LineEvent, Node: "n1", Kind: StreamOnChange, Gen: 1, At: 3150 * ms, Epoch: "E", Ver: 3,
				Reset: &ResetInfo{Reason: string(channel.ResetReloaded), From: 1, Open: true, OldEpoch: "E", NewEpoch: "E"}})
		failed, known := failedChecks(t, a)
		if len(failed) > 0 || !slices.Equal(known, []string{issueRYW}) {
			t.Fatalf("failed %v, known issues %v; want none and %s", failed, known, issueRYW)
		}
	})
	t.Run("a FromNow probe that stopped on the lost history before the failover ended", func(t *testing.T) {
		a := failoverAnalysis()
		a.Lines = append(a.Lines, nowProbe(StreamNowSub, 7, 2110*ms, []Line{{At: 2125 * ms, Epoch: "C", Ver: 3, Val: "l1"}}, reached("C", 3))...)
		if failed, known := failedChecks(t, a); len(failed)+len(known) > 0 {
			t.Fatalf("failed %v, known issues %v", failed, known)
		}
	})
}
