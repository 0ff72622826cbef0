package robustness

import (
	"crypto/sha1"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/redisync/redisync/channel"
)

// CheckResult is the outcome of one checker.
type CheckResult struct {
	Name       string
	Checked    int      // facts checked
	Count      int      // violations found
	Violations []string // the first few, in words
	Summary    string   // when set, how the violations spread, printed before them
	// Known marks a known issue of the library (check_failover.go): its count is reported
	// apart and fails a run only in strict mode (EnvStrict).
	Known bool
}

const maxListed = 15

func (r *CheckResult) fail(format string, args ...any) { r.failN(1, format, args...) }

// failN counts n violations described by one line.
func (r *CheckResult) failN(n int, format string, args ...any) {
	r.Count += n
	if len(r.Violations) < maxListed {
		r.Violations = append(r.Violations, fmt.Sprintf(format, args...))
	}
}

// String formats r on one line, with the violations after it.
func (r *CheckResult) String() string {
	if r.Count == 0 {
		return fmt.Sprintf("%-14s ok (%d checked)", r.Name, r.Checked)
	}
	s := fmt.Sprintf("%-14s FAILED: %d violations (%d checked)", r.Name, r.Count, r.Checked)
	if r.Known {
		s = fmt.Sprintf("%-14s KNOWN ISSUE: %d instances (%d checked)", r.Name, r.Count, r.Checked)
	}
	if r.Summary != "" {
		s += "; " + r.Summary
	}
	for _, v := range r.Violations {
		s += "\n      - " + v
	}
	if r.Count > len(r.Violations) {
		s += fmt.Sprintf("\n      - … %d more", r.Count-len(r.Violations))
	}
	return s
}

// opRec is an operation with its call and, when it returned, its return.
type opRec struct {
	Node   string
	Inc    int
	ID     uint64
	W      int
	Kind   string
	Key    string
	Val    string
	Exp    uint64
	Call   int64
	Ret    int64 // 0: no return (the process was killed): outcome unknown
	Status string
	Ver    uint64
	Epoch  string
	Actual uint64
	Pres   bool
	RVal   string // value read
	Err    string
}

// applied reports whether the op is known to have taken effect at op.Ver.
func (o *opRec) applied() bool {
	return o.Status == StatusOK || (o.Status == StatusError && o.Ver > 0 && o.Kind != OpRead && o.Kind != OpPub)
}

// unknown reports whether the op's outcome is unknown.
func (o *opRec) unknown() bool { return o.Ret == 0 || (o.Status == StatusError && !o.applied()) }

// Analysis is a run's recorded history with Redis's final state, ready to be checked.
type Analysis struct {
	Scenario  string
	Lines     []Line
	Redis     *redisFinal
	Finals    map[string]*Final // node name -> final state
	Nodes     []string          // every node that must report a final state
	Wipes     []wipeWindow
	Failovers []failoverWindow // failover deployments: each failover fault
	LastInc   map[string]int   // process node -> its last incarnation

	ops       []*opRec
	mapTruth  map[string]map[uint64]change // epoch -> seq -> the change, from Redis (final epoch) or the streams
	chanTruth map[string]map[uint64]string // epoch -> seq -> payload id
	truthErrs []string                     // streams that disagree on an epoch Redis lost
	chanMsgs  []msgRec                     // every message known with the time its publish began
	mapMsgs   []msgRec                     // every map write known with the time its call began

	// Failover deployments (check_failover.go).
	rw                      *CheckResult          // the rewinds checker, filled by the stream checkers
	knownResume, knownStart *CheckResult          // known issues, filled by the stream checkers
	knownRYW                *CheckResult          // known issue, filled by checkVersions
	rewinds                 []Line                // every rewound reset of every stream
	lost                    map[*opRec]*lostWrite // acknowledged writes the final history does not hold
	calls                   map[string]bool       // values and payload ids of every write and publish invoked
	deleted                 map[string]bool       // keys a delete was invoked on
	dropped                 int                   // operations the linearizability check left out as lost history
	delsAt                  map[posKey][]*opRec   // applied deletes by key (in epoch) and version
	valCall                 map[string]int64      // set and compare-and-set values -> when their call began
}

// prepare joins calls and returns and builds what every checker uses.
func (a *Analysis) prepare() {
	a.ops, a.truthErrs = nil, nil
	byID := map[string]*opRec{}
	idOf := func(l Line) string { return fmt.Sprintf("%s/%d/%d", l.Node, l.Inc, l.ID) }
	for _, l := range a.Lines {
		switch l.T {
		case LineCall:
			o := &opRec{Node: l.Node, Inc: l.Inc, ID: l.ID, W: l.W, Kind: l.Kind, Key: l.Key, Val: l.Val, Exp: l.Exp, Call: l.At}
			byID[idOf(l)] = o
			a.ops = append(a.ops, o)
		case LineReturn:
			if o := byID[idOf(l)]; o != nil {
				o.Ret, o.Status, o.Ver, o.Epoch, o.Actual, o.Pres, o.Err = l.At, l.Status, l.Ver, l.Epoch, l.Actual, l.Present, l.Err
				if l.Kind == OpRead {
					o.RVal = l.Val
				}
			}
		}
	}
	a.calls, a.deleted, a.rewinds = map[string]bool{}, map[string]bool{}, nil
	a.rw = &CheckResult{Name: "rewinds"}
	a.knownResume = &CheckResult{Name: issueResume, Known: true}
	a.knownStart = &CheckResult{Name: issueLostStart, Known: true}
	a.knownRYW = &CheckResult{Name: issueRYW, Known: true}
	for _, o := range a.ops {
		switch o.Kind {
		case OpSet, OpCAS, OpPub:
			a.calls[o.Val] = true
		case OpDel:
			a.deleted[o.Key] = true
		}
	}
	for _, l := range a.Lines {
		if l.T == LineEvent && isRewound(l.Reset) {
			a.rewinds = append(a.rewinds, l)
		}
	}
	a.mapTruth = map[string]map[uint64]change{}
	a.chanTruth = map[string]map[uint64]string{}
	if a.Redis.MapEpoch != "" {
		a.mapTruth[a.Redis.MapEpoch] = a.Redis.MapLog
	}
	if a.Redis.ChanEpoch != "" {
		a.chanTruth[a.Redis.ChanEpoch] = a.Redis.ChanLog
	}
	// Epochs Redis lost are known only from what the streams saw: they must agree.
	for _, l := range a.Lines {
		if l.T != LineEvent || l.Reset != nil || l.Err != "" || l.Epoch == "" || l.Status == statusMalformed {
			continue
		}
		switch {
		case isMapStream(l.Kind):
			if l.Epoch == a.Redis.MapEpoch {
				continue
			}
			tr := a.mapTruth[l.Epoch]
			if tr == nil {
				tr = map[uint64]change{}
				a.mapTruth[l.Epoch] = tr
			}
			c := change{Del: l.Del, Old: l.Old, Key: l.Key, Val: l.Val}
			if prev, ok := tr[l.Ver]; !ok {
				tr[l.Ver] = c
			} else if prev != c {
				a.truthErrs = append(a.truthErrs, fmt.Sprintf("map epoch %s seq %d: %s saw %+v, another stream %+v", l.Epoch, l.Ver, l.Node, c, prev))
			}
		default:
			if l.Epoch == a.Redis.ChanEpoch {
				continue
			}
			tr := a.chanTruth[l.Epoch]
			if tr == nil {
				tr = map[uint64]string{}
				a.chanTruth[l.Epoch] = tr
			}
			if prev, ok := tr[l.Ver]; !ok {
				tr[l.Ver] = l.Val
			} else if prev != l.Val {
				a.truthErrs = append(a.truthErrs, fmt.Sprintf("channel epoch %s seq %d: %s saw %q, another stream %q", l.Epoch, l.Ver, l.Node, l.Val, prev))
			}
		}
	}
	a.indexMessages()
	a.findLost()
}

// wipedAfter reports whether Redis lost its data after t (Unix ns).
func (a *Analysis) wipedAfter(t int64) bool {
	for _, w := range a.Wipes {
		if w.KillStart > t {
			return true
		}
	}
	return false
}

// mayBeLost reports whether an op invoked at call may have been applied to data Redis then
// lost: a restart without persistence began after the call. When the reply came does not
// matter: a reply written before Redis was killed can be held up on a slow or stalled link
// and reach the client after the restart is over.
func (a *Analysis) mayBeLost(call int64) bool {
	for _, w := range a.Wipes {
		if w.KillStart > call {
			return true
		}
	}
	return false
}

// Check runs every checker but the linearizability and leak checks, which need more.
func (a *Analysis) Check() []*CheckResult {
	a.prepare()
	acked, streams, now := a.checkAcked(), a.checkStreams(), a.checkFromNow()
	sse, resume := a.checkSSE()
	out := []*CheckResult{acked, streams, now, sse, resume, a.checkResetRanges(),
		a.checkVersions(), a.checkAtMostOnce(), a.checkReplicas(), a.checkDigests()}
	if a.failover() {
		out = append(out, a.rw, a.knownResume, a.knownStart, a.knownRYW) // filled by the checkers above
	}
	return out
}

func matches(o *opRec, c change) bool {
	if c.Key != o.Key {
		return false
	}
	if o.Kind == OpDel {
		return c.Del
	}
	return !c.Del && c.Val == o.Val
}

// checkAcked: every acknowledged write is in Redis's log at its seq and present or
// superseded in Redis's final state, unless Redis lost it legitimately (a restart without
// persistence that began after the write was invoked); writes invoked after the last such
// restart began always survive. Every acknowledged publish is in the channel's log at its seq.
func (a *Analysis) checkAcked() *CheckResult {
	res := &CheckResult{Name: "acked-writes"}
	rf := a.Redis
	for _, o := range a.ops {
		if !o.applied() || o.Kind == OpRead {
			continue
		}
		res.Checked++
		if o.Kind == OpPub {
			switch {
			case o.Epoch == rf.ChanEpoch:
				if got, ok := rf.ChanLog[o.Ver]; (!ok || got != o.Val) && a.failover() {
					a.checkLost(res, o)
				} else if !ok || got != o.Val {
					res.fail("publish %s acknowledged at %s:%d, the channel's log holds %q there", o.Val, o.Epoch, o.Ver, got)
				}
			case a.Scenario == ScenarioWipe && a.mayBeLost(o.Call):
			default:
				res.fail("publish %s acknowledged at %s:%d, but the channel is in epoch %s", o.Val, o.Epoch, o.Ver, rf.ChanEpoch)
			}
			continue
		}
		epoch := ""
		if c, ok := rf.MapLog[o.Ver]; ok && rf.MapEpoch != "" && matches(o, c) && !a.outclaimed(o) {
			epoch = rf.MapEpoch
		} else {
			for e, tr := range a.mapTruth {
				if c, ok := tr[o.Ver]; ok && e != rf.MapEpoch && matches(o, c) {
					epoch = e
					break
				}
			}
		}
		what := fmt.Sprintf("%s %s of %s (node %s, version %d)", o.Kind, o.Val, o.Key, o.Node, o.Ver)
		switch {
		case epoch == "" && a.Scenario == ScenarioWipe && a.mayBeLost(o.Call):
			continue // applied to data Redis lost before anyone read it back
		case epoch == "" && a.failover():
			a.checkLost(res, o) // lost by a failover, or a violation
			continue
		case epoch == "":
			res.fail("acknowledged %s is not in Redis's log at seq %d", what, o.Ver)
			continue
		case epoch != rf.MapEpoch:
			if !a.mayBeLost(o.Call) {
				res.fail("%s invoked after the last restart lives in the lost epoch %s", what, epoch)
			}
			continue
		}
		st, present := rf.State[o.Key]
		switch {
		case o.Kind == OpDel && (!present || st.Ver > o.Ver):
		case o.Kind != OpDel && present && st.Ver == o.Ver && st.Val == o.Val:
		case o.Kind != OpDel && present && st.Ver > o.Ver:
		case o.Kind != OpDel && !present && a.deletedAfter(o.Key, o.Ver):
		default:
			res.fail("acknowledged %s is neither present nor superseded: Redis holds %+v (present %v)", what, st, present)
		}
	}
	return res
}

// deletedAfter reports whether the final log deletes key after seq.
func (a *Analysis) deletedAfter(key string, seq uint64) bool {
	for s, c := range a.Redis.MapLog {
		if s > seq && c.Key == key && c.Del {
			return true
		}
	}
	return false
}

// streamKey names a logical stream: a watch or a subscription, continuous across the
// restarts of a process node, or one Map's OnChange.
type streamKey struct {
	node, kind string
	inc, gen   int
}

// checkStreams: every watch and subscription is gap-free, duplicate-free and in order, holds
// what Redis's log holds at each seq, has a reset exactly where Redis lost the log (and
// nowhere else), and ends at the head. Every Map's OnChange is in order, holds what the
// log holds, and reloads (a reset) only where Redis lost the log.
func (a *Analysis) checkStreams() *CheckResult {
	res := &CheckResult{Name: "streams"}
	for _, e := range a.truthErrs {
		res.fail("%s", e)
	}
	streams := map[streamKey][]Line{}
	var order []streamKey
	for _, l := range a.Lines {
		if l.T != LineEvent || (l.Kind != StreamWatch && l.Kind != StreamSub && l.Kind != StreamOnChange) {
			continue // the FromNow and SSE streams have checkers of their own (check_now.go)
		}
		k := streamKey{node: l.Node, kind: l.Kind}
		if l.Kind == StreamOnChange {
			k.inc, k.gen = l.Inc, l.Gen
		}
		if _, ok := streams[k]; !ok {
			order = append(order, k)
		}
		streams[k] = append(streams[k], l)
	}
	for _, n := range a.Nodes {
		for _, kind := range []string{StreamWatch, StreamSub} {
			k := streamKey{node: n, kind: kind}
			if _, ok := streams[k]; !ok {
				order = append(order, k)
			}
		}
	}
	// The newest OnChange stream of each node: an older one ended with its Map (closed by
	// replica-restart, or with its process).
	newest := map[string]streamKey{}
	for _, k := range order {
		if n, ok := newest[k.node]; k.kind == StreamOnChange && (!ok || k.inc > n.inc || k.inc == n.inc && k.gen > n.gen) {
			newest[k.node] = k
		}
	}
	for _, k := range order {
		if k.kind == StreamOnChange {
			a.checkOnChange(res, k, streams[k], newest[k.node] != k)
		} else {
			a.checkStream(res, k, streams[k])
		}
	}
	return res
}

func (a *Analysis) checkStream(res *CheckResult, k streamKey, evs []Line) {
	rf := a.Redis
	finalEpoch, head := rf.MapEpoch, rf.MapHead
	if k.kind == StreamSub {
		finalEpoch, head = rf.ChanEpoch, rf.ChanHead
	}
	name := k.node + " " + k.kind
	f := a.newFollower(res, name)
	epoch, next, inc := "", uint64(1), 0
	for _, ev := range evs {
		if inc != 0 && ev.Inc != inc {
			f.resumed(ev.At, fmt.Sprintf("incarnation %d after %s:%d", ev.Inc, epoch, next-1), posKey{epoch, next - 1})
		}
		inc = ev.Inc
		if ev.Err != "" {
			res.fail("%s ended: %s", name, ev.Err)
			continue
		}
		res.Checked++
		if r := ev.Reset; r != nil {
			if isRewound(r) && a.failover() {
				f.rewound(ev, epoch, next)
				next = r.From
				continue
			}
			if !a.legitReset(r, epoch, next, ev.At, finalEpoch) {
				res.fail("%s: reset %+v while at %s:%d, where continuity was possible", name, *r, epoch, next-1)
			}
			epoch, next = r.NewEpoch, 1
			continue
		}
		if epoch == "" {
			epoch = ev.Epoch
		}
		if ev.Epoch != epoch {
			res.fail("%s: message %s:%d while following epoch %s, without a reset", name, ev.Epoch, ev.Ver, epoch)
			epoch, next = ev.Epoch, ev.Ver
		}
		switch {
		case ev.Ver < next:
			res.fail("%s: duplicate or out of order: seq %d after %d", name, ev.Ver, next-1)
		case ev.Ver > next:
			res.fail("%s: gap: seqs %d..%d never delivered (epoch %s)", name, next, ev.Ver-1, epoch)
		}
		next = max(next, ev.Ver+1)
		f.deliver(ev)
	}
	f.finish()
	if epoch != finalEpoch || next-1 != head {
		res.fail("%s ends at %s:%d, the head is %s:%d", name, epoch, next-1, finalEpoch, head)
	}
}

// checkContent compares an event with the log.
func (a *Analysis) checkContent(res *CheckResult, name string, ev Line) {
	if !isMapStream(ev.Kind) {
		want, ok := a.chanTruth[ev.Epoch][ev.Ver]
		if !ok {
			res.fail("%s: message %s:%d (%s) is not in the channel's log", name, ev.Epoch, ev.Ver, ev.Val)
		} else if want != ev.Val {
			res.fail("%s: message %s:%d is %s, the log holds %s", name, ev.Epoch, ev.Ver, ev.Val, want)
		}
		return
	}
	want, ok := a.mapTruth[ev.Epoch][ev.Ver]
	got := change{Del: ev.Del, Old: ev.Old, Key: ev.Key, Val: ev.Val}
	if !ok {
		res.fail("%s: change %s:%d (%+v) is not in the map's log", name, ev.Epoch, ev.Ver, got)
	} else if want != got {
		res.fail("%s: change %s:%d is %+v, the log holds %+v", name, ev.Epoch, ev.Ver, got, want)
	}
}

// legitReset reports whether a stream at epoch (next expected seq next) may be reset by r at
// time at: only when Redis lost the log, that is a restart without persistence came before
// and the epoch the stream followed is gone.
func (a *Analysis) legitReset(r *ResetInfo, epoch string, next uint64, at int64, finalEpoch string) bool {
	return a.Scenario == ScenarioWipe && r.Reason == "epoch-changed" && r.OldEpoch == epoch && epoch != "" &&
		epoch != finalEpoch && r.From == next && a.wipedBefore(at)
}

func (a *Analysis) wipedBefore(t int64) bool {
	for _, w := range a.Wipes {
		if w.KillStart < t {
			return true
		}
	}
	return false
}

// checkOnChange checks one Map's OnChange stream; ended says that the Map was closed (a newer
// one followed it).
func (a *Analysis) checkOnChange(res *CheckResult, k streamKey, evs []Line, ended bool) {
	name := fmt.Sprintf("%s.%d onchange (replica %d)", k.node, k.inc, k.gen)
	finalEpoch := a.Redis.MapEpoch
	f := a.newFollower(res, name)
	// A Map closed while a failover that can lose writes was under way may not have been
	// told (like a probe that stopped then).
	f.excused = ended && len(evs) > 0 && a.lossyWindowAt(evs[len(evs)-1].At) != nil
	epoch, last := "", uint64(0)
	for _, ev := range evs {
		res.Checked++
		if ev.Reset != nil {
			legit := a.Scenario == ScenarioWipe && epoch != finalEpoch && ev.Epoch != epoch && a.wipedBefore(ev.At)
			if a.failover() {
				// A replica reloads after a failover lost writes it had applied.
				legit = ev.Reset.Reason == string(channel.ResetReloaded) && a.lossyBefore(ev.At) && (epoch == "" || ev.Epoch == epoch)
				f.reloaded()
			}
			if !legit {
				res.fail("%s: reloaded a snapshot (%s) at %s:%d after %s:%d, where continuity was possible",
					name, ev.Reset.Reason, ev.Epoch, ev.Ver, epoch, last)
			}
			epoch, last = ev.Epoch, ev.Ver
			continue
		}
		if epoch == "" {
			epoch = ev.Epoch
		}
		if ev.Epoch != epoch {
			res.fail("%s: change %s:%d while following epoch %s, without a reset", name, ev.Epoch, ev.Ver, epoch)
			epoch, last = ev.Epoch, 0
		}
		if ev.Ver <= last {
			res.fail("%s: change at seq %d after seq %d", name, ev.Ver, last)
		}
		last = max(last, ev.Ver)
		f.deliver(ev)
	}
	f.finish()
}

// checkVersions: the checks made inside the nodes (versions a replica showed or announced
// never went down; read-your-writes) found nothing. On a failover deployment, read-your-writes
// does not hold for a write a failover lost (its node's replica may already follow the new
// master's history past its seq, where it was never written).
func (a *Analysis) checkVersions() *CheckResult {
	res := &CheckResult{Name: "versions"}
	for _, f := range a.Finals {
		if f != nil {
			res.Checked += f.Obs
		}
	}
	for _, l := range a.Lines {
		switch {
		case l.T != LineViolation:
		case l.Kind == ViolationRYW && a.lostWrite(l.Node, l.Inc, l.ID):
		case l.Kind == ViolationRYW && a.failover() && a.replicaAhead(l):
			a.knownRYW.Checked++
			a.knownRYW.fail("%s.%d: %s; its replica stood at a seq past it in the history the failover lost", l.Node, l.Inc, l.Err)
		default:
			res.fail("%s.%d: %s", l.Node, l.Inc, l.Err)
		}
	}
	return res
}

// checkAtMostOnce: no write and no publish was applied twice in one epoch (a retry that the
// idempotency token failed to recognize).
func (a *Analysis) checkAtMostOnce() *CheckResult {
	res := &CheckResult{Name: "at-most-once"}
	for e, tr := range a.mapTruth {
		seen := map[string]uint64{}
		for _, s := range slices.Sorted(maps.Keys(tr)) {
			c := tr[s]
			if c.Del {
				continue
			}
			res.Checked++
			if prev, ok := seen[c.Val]; ok {
				res.fail("map epoch %s: write %s of %s applied twice, at seqs %d and %d", e, c.Val, c.Key, prev, s)
			}
			seen[c.Val] = s
		}
	}
	for e, tr := range a.chanTruth {
		seen := map[string]uint64{}
		for _, s := range slices.Sorted(maps.Keys(tr)) {
			id := tr[s]
			res.Checked++
			if prev, ok := seen[id]; ok {
				res.fail("channel epoch %s: publish %s appended twice, at seqs %d and %d", e, id, prev, s)
			}
			seen[id] = s
		}
	}
	return res
}

// checkReplicas: every node converged, and its replica equals Redis's state key by key.
func (a *Analysis) checkReplicas() *CheckResult {
	res := &CheckResult{Name: "replicas"}
	for _, p := range a.Redis.Problems {
		res.fail("Redis: %s", p)
	}
	for _, n := range a.Nodes {
		res.Checked++
		f := a.Finals[n]
		if f == nil {
			res.fail("%s reported no final state", n)
			continue
		}
		if !f.Converged {
			res.fail("%s: %s", n, f.Err)
		}
		if d := diffState(f.State, a.Redis.State); d != "" {
			res.fail("%s's replica differs from Redis: %s", n, d)
		}
	}
	return res
}

func diffState(replica, redis map[string]Stored) string {
	var diffs []string
	for _, k := range slices.Sorted(maps.Keys(redis)) {
		if r, ok := replica[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s missing (Redis %d=%s)", k, redis[k].Ver, redis[k].Val))
		} else if r != redis[k] {
			diffs = append(diffs, fmt.Sprintf("%s is %d=%s (Redis %d=%s)", k, r.Ver, r.Val, redis[k].Ver, redis[k].Val))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(replica)) {
		if _, ok := redis[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s=%d is not in Redis", k, replica[k].Ver))
		}
	}
	return strings.Join(diffs, "; ")
}

// checkDigests: every replica's Verify matched Redis's digest, and Redis's digest is the one
// its state implies (PROTOCOL.md, "The digest"), computed here independently.
func (a *Analysis) checkDigests() *CheckResult {
	res := &CheckResult{Name: "digests"}
	for _, n := range a.Nodes {
		f := a.Finals[n]
		if f == nil {
			continue
		}
		res.Checked++
		if !f.Verified || !f.Match {
			res.fail("%s: Verify %s", n, f.Verify)
		}
	}
	res.Checked++
	x, y := stateDigest(a.Redis.State)
	if x != a.Redis.DX || y != a.Redis.DY || len(a.Redis.State) != a.Redis.N {
		res.fail("Redis keeps digest %012x%012x over %d keys, its state implies %012x%012x over %d keys",
			a.Redis.DX, a.Redis.DY, a.Redis.N, x, y, len(a.Redis.State))
	}
	return res
}

// stateDigest computes the map digest of PROTOCOL.md: per (key, version), SHA-1 of
// "VERSION:KEY", bytes 0-5 and 6-11 as 48-bit lanes, summed modulo 2^48.
func stateDigest(state map[string]Stored) (x, y uint64) {
	const mask = 1<<48 - 1
	for k, st := range state {
		h := sha1.Sum([]byte(strconv.FormatUint(st.Ver, 10) + ":" + k))
		var lx, ly uint64
		for i := 0; i < 6; i++ {
			lx = lx<<8 | uint64(h[i])
			ly = ly<<8 | uint64(h[6+i])
		}
		x, y = (x+lx)&mask, (y+ly)&mask
	}
	return x, y
}

// Figures counts a run's operations and events.
type Figures struct {
	Ops, Acked, Conflicts, Unknown int // map writes and reads
	Absent                         int // deletes that found the key absent and wrote nothing
	Pubs, PubsAcked, PubsUnknown   int
	Events, Resets                 int
	Probes, ProbesReached          int    // FromNow streams started, and those that reached the head read at their stop
	SSEConns, SSEResumes           int    // SSE connections, and those that sent Last-Event-ID
	Retries                        uint64 // script calls repeated after a failure without a reply
	Faults                         map[string]int
	Violations                     int
	ByCheck                        map[string]int // violations per checker
	Scenarios                      map[string]int // runs per scenario

	// Failover deployments.
	Failovers   int            // failover faults that can lose writes
	Lost        int            // acknowledged writes and publishes lost by them (each reported by a rewound reset)
	LostToldAll int            // of those, reported by every node's replica stream (Watch or subscription)
	LostUnseen  int            // lost by failovers before any stream delivered them: nobody to tell
	Rewound     int            // rewound resets delivered, by every stream
	Reloads     int            // OnChange resets: a replica loaded a new snapshot
	Dropped     int            // operations the linearizability check left out as lost history
	Known       map[string]int // instances of the library's known issues (not violations unless strict)
}

func (a *Analysis) figures() Figures {
	f := Figures{Faults: map[string]int{}}
	for _, o := range a.ops {
		if o.Kind == OpPub {
			f.Pubs++
			if o.applied() {
				f.PubsAcked++
			} else {
				f.PubsUnknown++
			}
			continue
		}
		f.Ops++
		switch {
		case o.Status == StatusConflict:
			f.Conflicts++
		case o.Status == StatusAbsent:
			f.Absent++
		case o.Status == StatusOK:
			f.Acked++
		default:
			f.Unknown++
		}
	}
	for _, fin := range a.Finals {
		if fin != nil {
			f.Retries += fin.Retries
		}
	}
	for _, w := range a.Failovers {
		if w.Lossy {
			f.Failovers++
		}
	}
	f.Lost, f.LostToldAll, f.LostUnseen = a.lostFigures()
	f.Rewound, f.Dropped = len(a.rewinds), a.dropped
	for _, l := range a.Lines {
		switch l.T {
		case LineEvent:
			f.Events++
			if l.Reset != nil {
				f.Resets++
			}
			if l.Reset != nil && l.Kind == StreamOnChange {
				f.Reloads++
			}
		case LineStart:
			f.Probes++
		case LineEnd:
			if l.Status == EndReached {
				f.ProbesReached++
			}
		case LineConnect:
			f.SSEConns++
			if l.Val != "" {
				f.SSEResumes++
			}
		}
	}
	return f
}

func sortedKeys(m map[string]int) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
