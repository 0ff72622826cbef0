package robustness

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/redisync/redisync/channel"
)

// The rules of the failover deployments (failover.go). A failover may lose writes that Redis
// acknowledged; the new master then hands out their seqs again, in the same epoch, to other
// writes. What the library must do about it (PROTOCOL.md, section 5, "Rewind"), and what is
// checked here and in the stream checkers that call these helpers:
//
//   - A stream that delivered messages the final history does not hold (at their position)
//     must, later, deliver a rewound reset whose range covers them: it forgets them, and the
//     messages it delivers from the range's first seq on must be the final history's.
//     Whatever a stream delivered and did not forget is the final history (the content check
//     is made at the end instead of at once). A FromNow probe that stopped, or a Map (its
//     OnChange) that was closed, while the failover was under way is excused: it may have
//     stopped before it could be told.
//   - A rewound reset is legitimate only after a failover that may lose writes began, in the
//     epoch followed (old and new epoch both that one), and exact: it ends at the last
//     message delivered, and its first seq holds, in what the stream delivered, a message
//     the final history does not hold there (it starts where the histories part, not before;
//     that the histories agree below it is the content check of what was not forgotten).
//     What it forgets must have been written by someone. A FromNow probe's first event may
//     be one (its start was on the history the failover lost).
//   - A Map's OnChange may reload (a reset) only after such a failover began; it forgets
//     every change announced before.
//   - An acknowledged write or publish that the final history does not hold at its position
//     is lost by a failover, counted and not a violation, when a failover that may lose writes
//     ended after its call and at least one stream reported its position in a rewound reset's
//     range; or when no stream delivered it and it returned less than unseenMargin before
//     such a failover began, or during it (it was lost before anyone saw it: nobody to tell).
//     Otherwise it is a violation (acked-writes). Whether every node's replica stream (its
//     Watch for a map write, its subscription for a publish) reported it is counted.
//   - The linearizability check leaves lost writes out (neither ok nor failed), and the
//     observations made during such a failover that only a lost history explains (linearize.go);
//     read-your-writes is not held against a lost write (checkVersions).
//
// Two known issues of the library (below) are told apart from violations by their exact
// pattern.

// Known issues of the library that the failover deployments find (docs/robustness.md, "Known
// issues"). Each is a precise pattern of violations, counted by a result of its own (Known):
// reported with every run, a failure only in strict mode (EnvStrict), so that the suite stays
// green on them until the library is fixed, and fails on anything else.
const (
	// issueResume: a stream resumed from a stored position (an SSE client's Last-Event-ID, a
	// node process's After) that names a message a failover lost, after delivering it. The
	// position is EPOCH:SEQ, without the id of the entry: the new subscription cannot tell
	// that the history it is given is not the one the client followed, and delivers no
	// rewound reset for what the client delivered of the lost one.
	issueResume = "known-resume"
	// issueLostStart: a subscription whose start was fixed (FromNow) on the part of a
	// history that a failover then lost. After the failover, its rewind finds nothing it
	// delivered in the log and takes the new head + 1 as the first seq lost; the messages the
	// new master wrote between the point where the histories part and that head, published
	// after the start, are neither delivered nor in the reset's range.
	issueLostStart = "known-lost-start"
	// issueRYW: read-your-writes broken for a write that survived a failover. The write
	// returns once its node's replica stands at or past its seq; a replica still in the
	// history the failover lost (not rewound yet) may stand past it already, in that other
	// history: the write returns at once, and the replica shows the key's older version.
	issueRYW = "known-ryw-lost-history"
)

// replicaAhead reports whether, when the read-your-writes violation v was recorded, its
// node's replica stood in the history a failover lost at or past the write's seq: the last
// change its OnChange announced before v is at a seq at or past v.Ver, the final history does
// not hold it there, and no reset came after it.
func (a *Analysis) replicaAhead(v Line) bool {
	var last *Line
	for i := range a.Lines {
		l := &a.Lines[i]
		if l.T == LineEvent && l.Kind == StreamOnChange && l.Node == v.Node && l.Inc == v.Inc && l.At <= v.At {
			last = l
		}
	}
	if last == nil || last.Reset != nil || last.Ver < v.Ver {
		return false
	}
	held, _ := a.holds(*last)
	return !held
}

// failover reports whether the run was on a deployment with failovers.
func (a *Analysis) failover() bool { return isFailoverScenario(a.Scenario) }

// lossyBefore reports whether a failover that may lose writes began before t (Unix ns).
func (a *Analysis) lossyBefore(t int64) bool {
	for _, w := range a.Failovers {
		if w.Lossy && w.Start < t {
			return true
		}
	}
	return false
}

// lossyAfter reports whether a failover that may lose writes ended after t: a write invoked
// at t may be among those it lost.
func (a *Analysis) lossyAfter(t int64) bool {
	for _, w := range a.Failovers {
		if w.Lossy && w.End > t {
			return true
		}
	}
	return false
}

// inLossyWindow reports whether an op invoked at call that returned at ret (0: never) ran
// while a failover that may lose writes was under way.
func (a *Analysis) inLossyWindow(call, ret int64) bool {
	for _, w := range a.Failovers {
		if w.Lossy && call < w.End && (ret == 0 || ret > w.Start) {
			return true
		}
	}
	return false
}

// lossyWindowAt returns the failover that may lose writes under way at t, or nil.
func (a *Analysis) lossyWindowAt(t int64) *failoverWindow {
	for i, w := range a.Failovers {
		if w.Lossy && w.Start < t && t < w.End {
			return &a.Failovers[i]
		}
	}
	return nil
}

// holds reports whether the log of ev's epoch (Redis's final one, or what the streams saw of
// a lost one) holds ev's message or change at ev's seq, and what it holds there.
func (a *Analysis) holds(ev Line) (bool, string) {
	if isMapStream(ev.Kind) {
		want, ok := a.mapTruth[ev.Epoch][ev.Ver]
		if !ok {
			return false, "nothing"
		}
		return want == (change{Del: ev.Del, Old: ev.Old, Key: ev.Key, Val: ev.Val}), describeChange(want)
	}
	want, ok := a.chanTruth[ev.Epoch][ev.Ver]
	if !ok {
		return false, "nothing"
	}
	return want == ev.Val, want
}

// oldest returns the oldest seq the final history of epoch holds for a stream of kind (1 when
// it holds nothing).
func (a *Analysis) oldest(kind, epoch string) uint64 {
	var seqs []uint64
	if isMapStream(kind) {
		seqs = slices.Collect(maps.Keys(a.mapTruth[epoch]))
	} else {
		seqs = slices.Collect(maps.Keys(a.chanTruth[epoch]))
	}
	if len(seqs) == 0 {
		return 1
	}
	return slices.Min(seqs)
}

func describeChange(c change) string {
	if c.Del {
		return fmt.Sprintf("del %s (was %d)", c.Key, c.Old)
	}
	return fmt.Sprintf("set %s=%s (was %d)", c.Key, c.Val, c.Old)
}

// describe names an event's message or change.
func describe(ev Line) string {
	if isMapStream(ev.Kind) {
		return describeChange(change{Del: ev.Del, Old: ev.Old, Key: ev.Key, Val: ev.Val})
	}
	return ev.Val
}

// written reports whether someone wrote ev's message or change: a call with its payload or
// value, or a delete of its key.
func (a *Analysis) written(ev Line) bool {
	if isMapStream(ev.Kind) && ev.Del {
		return a.deleted[ev.Key]
	}
	return a.calls[ev.Val]
}

// follower applies the rewind rules to one stream's messages.
type follower struct {
	a    *Analysis
	res  *CheckResult // the stream's own checker, for content it must hold at once
	name string

	got     map[posKey]Line // delivered and not forgotten by a reset
	pending map[posKey]Line // of those, what the final history does not hold (yet to be forgotten)
	lost    map[posKey]bool // every position where it delivered what the final history does not hold
	resumes []resumeNote    // when the stream resumed from a stored position
	excused bool            // a probe that stopped while a failover was under way: it may not have been told
}

// resumeNote is a stream resuming from a position it stored: it then has no memory of what
// it delivered before (a node process's incarnation, an SSE client's connection).
type resumeNote struct {
	at   int64
	what string
	pos  posKey // the position it resumed after
}

func (a *Analysis) newFollower(res *CheckResult, name string) *follower {
	return &follower{a: a, res: res, name: name, got: map[posKey]Line{}, pending: map[posKey]Line{}, lost: map[posKey]bool{}}
}

// resumed notes that the stream resumed after pos, a position it stored, at t.
func (f *follower) resumed(t int64, what string, pos posKey) {
	f.resumes = append(f.resumes, resumeNote{t, what, pos})
}

// deliver checks a message or change against the log: at once, or, on a failover
// deployment, when the final history does not hold it, at the end (finish), unless a reset
// forgets it first.
func (f *follower) deliver(ev Line) {
	if !f.a.failover() {
		f.a.checkContent(f.res, f.name, ev)
		return
	}
	k := posKey{ev.Epoch, ev.Ver}
	f.got[k] = ev
	if ok, _ := f.a.holds(ev); ok {
		return
	}
	if _, known := f.a.chanTruth[ev.Epoch]; !isMapStream(ev.Kind) && !known {
		f.a.checkContent(f.res, f.name, ev) // an epoch nobody else saw: no failover explains it
		return
	}
	if _, known := f.a.mapTruth[ev.Epoch]; isMapStream(ev.Kind) && !known {
		f.a.checkContent(f.res, f.name, ev)
		return
	}
	if _, dup := f.pending[k]; !dup {
		f.pending[k] = ev
	}
	f.lost[k] = true
}

// rewound checks a rewound reset delivered while the stream stood at (epoch, next-1), and
// forgets what it covers. The stream goes on at r.From.
func (f *follower) rewound(ev Line, epoch string, next uint64) {
	r, rw := ev.Reset, f.a.rw
	rw.Checked++
	switch {
	case !f.a.lossyBefore(ev.At):
		rw.fail("%s: rewound reset %s before any failover that can lose writes began", f.name, rangeText(r))
	case epoch == "" || r.OldEpoch != epoch || r.NewEpoch != epoch:
		rw.fail("%s: rewound reset %s from epoch %q to %q while following %q", f.name, rangeText(r), r.OldEpoch, r.NewEpoch, epoch)
	case r.Open || r.To+1 != next:
		rw.fail("%s: rewound reset %s while it had delivered up to %d: the range must end at the last message delivered",
			f.name, rangeText(r), next-1)
	}
	if d, ok := f.got[posKey{epoch, r.From}]; ok && r.From > f.a.oldest(ev.Kind, epoch) && !f.markedResume(ev, epoch) {
		// A reset from the log's oldest message is a subscription that could not tell where the
		// histories part below its start (PROTOCOL.md section 5, Rewind): it covers more than
		// was lost, and delivers the log again from there.
		if same, _ := f.a.holds(d); same {
			rw.fail("%s: rewound reset %s, but the final history still holds what it delivered at %d (%s): the range starts before the histories part",
				f.name, rangeText(r), r.From, describe(d))
		}
	}
	for k, d := range f.got {
		if k.epoch != r.OldEpoch || k.seq < r.From || (!r.Open && k.seq > r.To) {
			continue
		}
		if _, lost := f.pending[k]; lost && !f.a.written(d) {
			rw.fail("%s: delivered %s at %s:%d, which nobody wrote", f.name, describe(d), k.epoch, k.seq)
		}
		delete(f.pending, k)
		delete(f.got, k)
	}
}

// markedResume reports whether the rewound reset ev is the library's answer to a resume from a
// stored position without an entry id (channel.After): it ends at the position the stream
// resumed after, and an acknowledged write of the epoch was lost in its range, so that the
// resume could not tell whether the stream had delivered it (a subscription's mark of where
// the histories part says from where to announce).
func (f *follower) markedResume(ev Line, epoch string) bool {
	r := ev.Reset
	if r.Open || len(f.resumes) == 0 {
		return false
	}
	last := f.resumes[len(f.resumes)-1]
	if last.pos != (posKey{epoch, r.To}) || last.at > ev.At {
		return false
	}
	for o := range f.a.lost {
		if o.Epoch == epoch && (o.Kind == OpPub) == !isMapStream(ev.Kind) && o.Ver >= r.From && o.Ver <= r.To {
			return true
		}
	}
	return false
}

// reloaded forgets everything delivered: a Map's OnChange reloaded a snapshot.
func (f *follower) reloaded() {
	for k, d := range f.pending {
		if !f.a.written(d) {
			f.a.rw.fail("%s: announced %s at %s:%d, which nobody wrote", f.name, describe(d), k.epoch, k.seq)
		}
	}
	clear(f.pending)
	clear(f.got)
}

// finish reports the messages delivered that the final history does not hold and that no
// reset forgot: violations of the rewinds checker, or instances of the known issue
// issueResume when the stream resumed, after delivering them, from a stored position whose
// message is itself among them.
func (f *follower) finish() {
	if len(f.pending) == 0 {
		return
	}
	if f.excused {
		f.reloaded() // what it delivered must have been written all the same
		return
	}
	f.a.rw.Checked += len(f.pending)
	keys := slices.SortedFunc(maps.Keys(f.pending), func(x, y posKey) int {
		return cmp.Or(cmp.Compare(x.epoch, y.epoch), cmp.Compare(x.seq, y.seq))
	})
	var bad, known []posKey
	var how string
	for _, k := range keys {
		d := f.pending[k]
		r := f.resumedFromLost(d)
		if r == nil {
			bad = append(bad, k)
			continue
		}
		known = append(known, k)
		if how == "" {
			how = fmt.Sprintf("; it resumed (%s) from a position whose message it had delivered and the final history does not hold", r.what)
		}
	}
	if len(bad) > 0 {
		f.a.rw.failN(len(bad), "%s: delivered %d messages the final history does not hold, and no rewound reset of it covers them: %s",
			f.name, len(bad), f.list(bad))
	}
	if len(known) > 0 {
		f.a.knownResume.Checked += len(known)
		f.a.knownResume.failN(len(known), "%s: delivered %d messages the final history does not hold, and no rewound reset of it covers them: %s%s",
			f.name, len(known), f.list(known), how)
	}
}

// resumedFromLost returns the first resume, after d was delivered, from a stored position at
// or after d's seq whose message the stream had delivered and the final history does not
// hold: the resumed stream had no way to tell that the position it was given belongs to a
// lost history.
func (f *follower) resumedFromLost(d Line) *resumeNote {
	for i, r := range f.resumes {
		if r.at <= d.At || r.pos.epoch != d.Epoch || r.pos.seq < d.Ver {
			continue
		}
		if f.lost[r.pos] {
			return &f.resumes[i]
		}
		return nil
	}
	return nil
}

// list describes the first few pending messages of keys.
func (f *follower) list(keys []posKey) string {
	var parts []string
	for _, k := range keys[:min(len(keys), 4)] {
		d := f.pending[k]
		_, want := f.a.holds(d)
		parts = append(parts, fmt.Sprintf("%s:%d %s (the final history holds %s)", k.epoch, k.seq, describe(d), want))
	}
	if len(keys) > len(parts) {
		parts = append(parts, fmt.Sprintf("… %d in all", len(keys)))
	}
	return strings.Join(parts, ", ")
}

func rangeText(r *ResetInfo) string {
	if r.Open {
		return fmt.Sprintf("from %d on", r.From)
	}
	return fmt.Sprintf("%d..%d", r.From, r.To)
}

// isRewound reports whether a reset is a failover's rewind.
func isRewound(r *ResetInfo) bool { return r != nil && r.Reason == string(channel.ResetRewound) }

// lostWrite is an acknowledged write or publish that the final history does not hold.
type lostWrite struct {
	op       *opRec
	told     int  // streams whose rewound resets cover its position
	toldAll  bool // every node's replica stream (Watch, or subscription) among them
	failover bool // a failover that may lose writes ended after its call
	seen     bool // some stream delivered it (at its position)
	late     bool // it returned less than unseenMargin before such a failover began, or during it
}

// unseenMargin: a write that returned this long before a failover that may lose writes began
// (or later) may have been lost without any stream having delivered it: its replication and
// its pub/sub copy were in flight, or the subscribers were catching up.
const unseenMargin = time.Second

// findLost lists the acknowledged writes and publishes that the final history does not
// hold at their position, on a failover deployment.
func (a *Analysis) findLost() {
	a.lost, a.delsAt = map[*opRec]*lostWrite{}, map[posKey][]*opRec{}
	if !a.failover() {
		return
	}
	for _, o := range a.ops {
		if o.Kind == OpDel && o.applied() {
			k := posKey{o.Key, o.Ver} // the key in place of an epoch
			a.delsAt[k] = append(a.delsAt[k], o)
		}
	}
	rf := a.Redis
	type streamID struct {
		node, kind string
		inc, gen   int
	}
	for _, o := range a.ops {
		if !o.applied() || o.Kind == OpRead {
			continue
		}
		epoch := rf.MapEpoch
		if o.Kind == OpPub {
			if o.Epoch != rf.ChanEpoch || rf.ChanLog[o.Ver] == o.Val {
				continue // another epoch is acked-writes' business
			}
			epoch = o.Epoch
		} else if c, ok := rf.MapLog[o.Ver]; ok && matches(o, c) && !a.outclaimed(o) {
			continue
		}
		lw := &lostWrite{op: o, failover: a.lossyAfter(o.Call)}
		for _, w := range a.Failovers {
			lw.late = lw.late || (w.Lossy && w.End > o.Call && (o.Ret == 0 || o.Ret > w.Start-int64(unseenMargin)))
		}
		lw.seen = a.delivered(o, epoch)
		told := map[streamID]bool{}
		for _, l := range a.rewinds {
			if isMapStream(l.Kind) != (o.Kind != OpPub) || l.Reset.OldEpoch != epoch || o.Ver < l.Reset.From || (!l.Reset.Open && o.Ver > l.Reset.To) {
				continue
			}
			told[streamID{l.Node, l.Kind, l.Inc, l.Gen}] = true
		}
		lw.told = len(told)
		lw.toldAll = len(a.Nodes) > 0
		for _, n := range a.Nodes {
			kind := StreamSub
			if o.Kind != OpPub {
				kind = StreamWatch
			}
			found := false
			for id := range told {
				found = found || (id.node == n && id.kind == kind)
			}
			lw.toldAll = lw.toldAll && found
		}
		a.lost[o] = lw
	}
}

// outclaimed reports whether, on a failover deployment, another applied delete of the same
// key at the same version was invoked after o. A delete has no value of its own to be told
// by: two deletes of a key can be acknowledged at the same seq, one in a history a failover
// lost and one after it, in the history that reused the seq; the later one is the final
// history's.
func (a *Analysis) outclaimed(o *opRec) bool {
	if !a.failover() || o.Kind != OpDel {
		return false
	}
	for _, p := range a.delsAt[posKey{o.Key, o.Ver}] {
		if p != o && p.Call > o.Call {
			return true
		}
	}
	return false
}

// lostWrite reports whether node's (incarnation inc) acknowledged write id is one a failover
// lost.
func (a *Analysis) lostWrite(node string, inc int, id uint64) bool {
	for o, lw := range a.lost {
		if o.Node == node && o.Inc == inc && o.ID == id && lw.failover {
			return true
		}
	}
	return false
}

// checkLost reports a lost acknowledged write or publish that no failover explains or no
// stream was told of.
func (a *Analysis) checkLost(res *CheckResult, o *opRec) {
	lw := a.lost[o]
	what := fmt.Sprintf("%s %s of %s (node %s, at %d)", o.Kind, o.Val, o.Key, o.Node, o.Ver)
	if o.Kind == OpPub {
		what = fmt.Sprintf("publish %s (node %s, at %s:%d)", o.Val, o.Node, o.Epoch, o.Ver)
	}
	switch {
	case lw == nil:
		res.fail("acknowledged %s is not in the final history", what)
	case !lw.failover:
		res.fail("acknowledged %s is not in the final history, and no failover that can lose writes came after its call", what)
	case lw.told == 0 && (lw.seen || !lw.late):
		res.fail("acknowledged %s was lost by a failover, and no stream was told: no rewound reset covers it (a stream delivered it: %v)", what, lw.seen)
	}
}

// delivered reports whether some stream delivered o's message or change at its position.
func (a *Analysis) delivered(o *opRec, epoch string) bool {
	for _, l := range a.Lines {
		if l.T != LineEvent || l.Reset != nil || l.Err != "" || l.Epoch != epoch || l.Ver != o.Ver || isMapStream(l.Kind) == (o.Kind == OpPub) {
			continue
		}
		if o.Kind == OpPub && l.Val == o.Val || o.Kind != OpPub && matches(o, change{Del: l.Del, Key: l.Key, Val: l.Val}) {
			return true
		}
	}
	return false
}

// lostFigures counts the acknowledged writes lost by failovers that some stream was told
// of, those every node's replica stream was told of, and those no stream had delivered.
func (a *Analysis) lostFigures() (lost, toldAll, unseen int) {
	for _, lw := range a.lost {
		switch {
		case lw.failover && lw.told > 0:
			lost++
			if lw.toldAll {
				toldAll++
			}
		case lw.failover && !lw.seen && lw.late:
			unseen++
		}
	}
	return lost, toldAll, unseen
}
