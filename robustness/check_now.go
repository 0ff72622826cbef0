package robustness

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/redisync/redisync/channel"
)

// The checkers of the entry points: subscriptions and watches that start from now (probe.go)
// and the SSE clients of the gateways (sse.go). The long-lived streams of check.go start from
// positions the suite chose; these start where users start.

// msgRec is a message of the channel or a write of the map, with the time its call began.
type msgRec struct {
	epoch string
	seq   uint64
	call  int64  // Unix ns: when its publish or write was invoked
	what  string // payload id or value, for the reports
}

type posKey struct {
	epoch string
	seq   uint64
}

// indexMessages lists every message and map write whose position and invocation time are
// known: those in the logs (Redis's, or the streams' for a lost epoch) whose call is
// recorded, and the acknowledged publishes.
func (a *Analysis) indexMessages() {
	pubCall := map[string]int64{} // payload id -> call
	valCall := map[string]int64{} // set/cas value -> call
	a.valCall = valCall
	delCall := map[string]int64{} // "key/version" of an applied delete -> earliest call
	for _, o := range a.ops {
		switch {
		case o.Kind == OpPub:
			pubCall[o.Val] = o.Call
		case o.Kind == OpSet || o.Kind == OpCAS:
			valCall[o.Val] = o.Call
		case o.Kind == OpDel && o.applied():
			k := fmt.Sprintf("%s/%d", o.Key, o.Ver)
			if c, ok := delCall[k]; !ok || o.Call < c {
				delCall[k] = o.Call // the same key and version in two epochs: the earlier call is the safe one
			}
		}
	}
	a.chanMsgs, a.mapMsgs = nil, nil
	seen := map[posKey]bool{}
	for e, tr := range a.chanTruth {
		for s, id := range tr {
			if c, ok := pubCall[id]; ok {
				a.chanMsgs = append(a.chanMsgs, msgRec{epoch: e, seq: s, call: c, what: id})
				seen[posKey{e, s}] = true
			}
		}
	}
	for _, o := range a.ops {
		if o.Kind == OpPub && o.applied() && o.Epoch != "" && !seen[posKey{o.Epoch, o.Ver}] {
			a.chanMsgs = append(a.chanMsgs, msgRec{epoch: o.Epoch, seq: o.Ver, call: o.Call, what: o.Val})
		}
	}
	for e, tr := range a.mapTruth {
		for s, c := range tr {
			call, ok := valCall[c.Val]
			what := "set " + c.Key + "=" + c.Val
			if c.Del {
				call, ok = delCall[fmt.Sprintf("%s/%d", c.Key, s)]
				what = "delete " + c.Key
			}
			if ok {
				a.mapMsgs = append(a.mapMsgs, msgRec{epoch: e, seq: s, call: call, what: what})
			}
		}
	}
	order := func(x, y msgRec) int { return cmp.Or(cmp.Compare(x.epoch, y.epoch), cmp.Compare(x.seq, y.seq)) }
	slices.SortFunc(a.chanMsgs, order)
	slices.SortFunc(a.mapMsgs, order)
}

// nowStream is one FromNow stream: a probe, or an SSE client's first connection.
type nowStream struct {
	name  string
	kind  string
	setUp int64  // Unix ns: when its start was fixed, as the API promises
	evs   []Line // its events, in order
	end   *Line  // a probe's end, if it was recorded

	// stoppedIn is the failover that may lose writes under way when a probe stopped: it may
	// have stopped in the history the failover lost, before it could be told.
	stoppedIn *failoverWindow
}

// stopped returns when a probe stopped: its end, else its last event (0: neither).
func (p *nowStream) stopped() int64 {
	if p.end != nil {
		return p.end.At
	}
	if len(p.evs) > 0 {
		return p.evs[len(p.evs)-1].At
	}
	return 0
}

// checkFromNow: every subscription and watch that started from now delivers every message
// (map write) whose publish (write) began after it was set up, up to where it stopped, or
// announces it in a reset's range; each is in order, gap-free and duplicate-free, holds
// what the log holds, resets only where Redis lost the log, and does not end on its own.
// An SSE client's first connection, which starts from now too, is held to the same promise
// from the instant it read the stream's first id.
func (a *Analysis) checkFromNow() *CheckResult {
	res := &CheckResult{Name: "from-now"}
	type pk struct {
		node, kind string
		inc, gen   int
	}
	probes := map[pk]*nowStream{}
	var order []pk
	sse := map[string]*nowStream{}
	var sseOrder []string
	for i := range a.Lines {
		l := &a.Lines[i]
		switch {
		case isNowStream(l.Kind) && (l.T == LineStart || l.T == LineEvent || l.T == LineEnd):
			k := pk{l.Node, l.Kind, l.Inc, l.Gen}
			p := probes[k]
			if p == nil {
				p = &nowStream{name: fmt.Sprintf("%s.%d %s #%d", l.Node, l.Inc, l.Kind, l.Gen), kind: l.Kind}
				probes[k] = p
				order = append(order, k)
			}
			switch l.T {
			case LineStart:
				p.setUp = l.At
			case LineEvent:
				p.evs = append(p.evs, *l)
			case LineEnd:
				p.end = l
			}
		case isSSEStream(l.Kind) && (l.T == LineSSEID || l.T == LineEvent):
			s := sse[l.Node]
			if s == nil {
				if l.T != LineSSEID {
					continue // the client's first stream has not said where it starts
				}
				s = &nowStream{name: "SSE client " + l.Node + " (" + l.Kind + ")", kind: l.Kind, setUp: l.At}
				sse[l.Node] = s
				sseOrder = append(sseOrder, l.Node)
			}
			if l.T == LineEvent && l.Status != statusMalformed {
				s.evs = append(s.evs, *l)
			}
		}
	}
	total, failed := map[string]int{}, map[string]int{}
	for _, k := range order {
		p := probes[k]
		if p.setUp == 0 {
			res.fail("%s: events without a start", p.name)
			continue
		}
		before := res.Count
		p.stoppedIn = a.lossyWindowAt(p.stopped())
		a.checkNowSequence(res, p)
		a.checkObligations(res, p)
		total[p.kind]++
		if res.Count > before {
			failed[p.kind]++
		}
	}
	for _, n := range sseOrder {
		before := res.Count
		a.checkObligations(res, sse[n])
		total[sse[n].kind]++
		if res.Count > before {
			failed[sse[n].kind]++
		}
	}
	if res.Count > 0 {
		var parts []string
		for _, k := range sortedKeys(total) {
			parts = append(parts, fmt.Sprintf("%s %d/%d", k, failed[k], total[k]))
		}
		res.Summary = "streams failed by kind: " + strings.Join(parts, ", ")
	}
	return res
}

// checkNowSequence checks a probe's events one after the other.
func (a *Analysis) checkNowSequence(res *CheckResult, p *nowStream) {
	finalEpoch := a.Redis.ChanEpoch
	if isMapStream(p.kind) {
		finalEpoch = a.Redis.MapEpoch
	}
	f := a.newFollower(res, p.name)
	f.excused = p.stoppedIn != nil
	epoch, next, known := "", uint64(0), false
	for _, ev := range p.evs {
		if ev.Err != "" {
			res.fail("%s ended on its own: %s", p.name, ev.Err)
			continue
		}
		res.Checked++
		if r := ev.Reset; r != nil && isRewound(r) && a.failover() {
			if !known {
				// Started from now on a history a failover then lost: the reset covers every
				// seq from the new head + 1 to where it started, which it did not deliver.
				epoch, next, known = r.OldEpoch, r.To+1, true
			}
			f.rewound(ev, epoch, next)
			next = r.From
			continue
		}
		if r := ev.Reset; r != nil {
			legit := a.Scenario == ScenarioWipe && r.Reason == string(channel.ResetEpochChanged) && r.OldEpoch != "" &&
				r.OldEpoch != finalEpoch && a.wipedBefore(ev.At) && (!known || (r.OldEpoch == epoch && r.From == next))
			if !legit {
				at := "before any event"
				if known {
					at = fmt.Sprintf("while at %s:%d", epoch, next-1)
				}
				res.fail("%s: reset %+v %s, where continuity was possible", p.name, *r, at)
			}
			epoch, next, known = ev.Epoch, ev.Ver+1, true
			continue
		}
		switch {
		case !known:
			epoch, next, known = ev.Epoch, ev.Ver, true // from now: the first message may be any
		case epoch == "":
			epoch = ev.Epoch // a new history after a reset to none: from seq 1
		}
		if ev.Epoch != epoch {
			res.fail("%s: message %s:%d while following epoch %s, without a reset", p.name, ev.Epoch, ev.Ver, epoch)
			epoch, next = ev.Epoch, ev.Ver
		}
		switch {
		case ev.Ver < next:
			res.fail("%s: duplicate or out of order: seq %d after %d", p.name, ev.Ver, next-1)
		case ev.Ver > next:
			res.fail("%s: gap: seqs %d..%d never delivered (epoch %s)", p.name, next, ev.Ver-1, epoch)
		}
		next = max(next, ev.Ver+1)
		f.deliver(ev)
	}
	f.finish()
}

// checkObligations: every message whose call began after the stream was set up, up to where
// the stream stopped, was delivered to it or lies in one of its resets' ranges.
//
// Where it stopped: the head it reached (a probe that reached the head read when it was told
// to stop), or its last event when that is further (a reset may have taken it from the head's
// lost epoch to the next), else its last event. A message of another epoch counts when the stream followed
// that epoch (delivered from it, or named it in a reset): an epoch that came and went while
// the stream was elsewhere is not one it could have known of.
func (a *Analysis) checkObligations(res *CheckResult, p *nowStream) {
	delivered := map[posKey]bool{}
	seen := map[string]bool{}
	var resets []*ResetInfo
	var last *Line
	var rewound *ResetInfo // the first rewound reset
	var firstSeq uint64    // the position of the first message delivered
	var firstEpoch string
	first := ""
	for i := range p.evs {
		ev := &p.evs[i]
		if ev.Err != "" {
			continue
		}
		if isRewound(ev.Reset) && rewound == nil {
			rewound = ev.Reset
		}
		if ev.Reset != nil {
			resets = append(resets, ev.Reset)
			seen[ev.Reset.OldEpoch], seen[ev.Reset.NewEpoch] = true, true
		} else {
			delivered[posKey{ev.Epoch, ev.Ver}] = true
			seen[ev.Epoch] = true
			if first == "" {
				first, firstEpoch, firstSeq = fmt.Sprintf("%s:%d", ev.Epoch, ev.Ver), ev.Epoch, ev.Ver
			}
		}
		last = ev
	}
	var end channel.Position
	switch {
	case p.end != nil && p.end.Status == EndReached:
		end = channel.Position{Epoch: p.end.Epoch, Seq: p.end.Ver}
		if last != nil && (last.Epoch != end.Epoch || last.Ver > end.Seq) {
			// It went past the head: further in its epoch, or into the next one when a reset
			// said the head's epoch was lost (it owes nothing of the new epoch beyond that).
			end = channel.Position{Epoch: last.Epoch, Seq: last.Ver}
		}
	case last != nil:
		end = channel.Position{Epoch: last.Epoch, Seq: last.Ver}
	default:
		return // nothing delivered and no head reached: nothing to hold it to
	}
	msgs := a.chanMsgs
	if isMapStream(p.kind) {
		msgs = a.mapMsgs
	}
	// The known issue issueLostStart: set up while a failover that may lose writes was under
	// way, on the history it lost, the stream went on from the new master's head (the From of
	// its first rewound reset, or without one the first message it delivered) and missed what
	// the new master had written below it.
	setUpIn := a.lossyWindowAt(p.setUp)
	bEpoch, boundary := firstEpoch, firstSeq
	if rewound != nil {
		bEpoch, boundary = rewound.OldEpoch, rewound.From
	}
	lostStart := func(m msgRec) bool {
		return a.failover() && setUpIn != nil && m.epoch == bEpoch && m.seq < boundary && m.call > setUpIn.Start
	}
	var missed, known []string
	n, nk := 0, 0
	for _, m := range msgs {
		if m.call <= p.setUp || (p.stoppedIn != nil && m.call > p.stoppedIn.Start) {
			continue // before its set-up, or maybe only in the history after a failover it did not live to see
		}
		if m.epoch == end.Epoch {
			if m.seq > end.Seq {
				continue
			}
		} else if !seen[m.epoch] || m.epoch == "" {
			continue
		}
		res.Checked++
		if delivered[posKey{m.epoch, m.seq}] || covered(resets, m.epoch, m.seq) {
			continue
		}
		if lostStart(m) {
			nk++
			if len(known) < 4 {
				known = append(known, fmt.Sprintf("%s:%d (%s, invoked %.1f ms after the set-up)", m.epoch, m.seq, m.what, float64(m.call-p.setUp)/1e6))
			}
			continue
		}
		n++
		if len(missed) < 4 {
			missed = append(missed, fmt.Sprintf("%s:%d (%s, invoked %.1f ms after the set-up)", m.epoch, m.seq, m.what, float64(m.call-p.setUp)/1e6))
		}
	}
	if n > 0 {
		if first == "" {
			first = "nothing"
		}
		more := ""
		if n > len(missed) {
			more = fmt.Sprintf(", … %d in all", n)
		}
		res.failN(n, "%s: %d messages whose call began after it was set up were neither delivered nor in a reset: %s%s; it delivered %s first and stopped at %s",
			p.name, n, strings.Join(missed, ", "), more, first, end)
	}
	if nk > 0 {
		if first == "" {
			first = "nothing"
		}
		a.knownStart.Checked += nk
		a.knownStart.failN(nk, "%s: set up during a failover that lost writes, went on from %d, missed %d messages the new master wrote below that: %s; it delivered %s first and stopped at %s",
			p.name, boundary, nk, strings.Join(known, ", "), first, end)
	}
}

// covered reports whether a reset's range holds seq of epoch.
func covered(resets []*ResetInfo, epoch string, seq uint64) bool {
	for _, r := range resets {
		if r.OldEpoch == epoch && seq >= r.From && (r.Open || seq <= r.To) {
			return true
		}
	}
	return false
}

// checkSSE checks each SSE client's stream across its connections. sse: every event's id
// names its position ("EPOCH:SEQ", as channel.ParsePosition reads it), a resumed stream
// starts where Last-Event-ID said, the messages are in order without duplicates, a gap or
// another epoch only after a reset (and a reset only where Redis lost the log), each holds
// what the log holds, and the stream ends at the head. sse-resume: a stream resumed after a
// position whose epoch Redis has lost yields a reset before any message of the new epoch.
func (a *Analysis) checkSSE() (sse, resume *CheckResult) {
	sse, resume = &CheckResult{Name: "sse"}, &CheckResult{Name: "sse-resume"}
	byClient := map[string][]Line{}
	var clients []string
	for _, l := range a.Lines {
		if !isSSEStream(l.Kind) || (l.T != LineConnect && l.T != LineSSEID && l.T != LineEvent) {
			continue
		}
		if _, ok := byClient[l.Node]; !ok {
			clients = append(clients, l.Node)
		}
		byClient[l.Node] = append(byClient[l.Node], l)
	}
	for _, c := range clients {
		a.checkSSEClient(sse, resume, c, byClient[c])
	}
	return sse, resume
}

func (a *Analysis) checkSSEClient(res, resume *CheckResult, client string, lines []Line) {
	name := "SSE client " + client
	finalEpoch, head := a.Redis.ChanEpoch, a.Redis.ChanHead
	if len(lines) > 0 && lines[0].Kind == StreamSSEMap {
		finalEpoch, head = a.Redis.MapEpoch, a.Redis.MapHead
	}
	f := a.newFollower(res, name)
	epoch, next, known := "", uint64(0), false
	var sent string              // Last-Event-ID of the current connection
	var resumed channel.Position // what it names
	pending := false             // resumed, and no message or reset received yet
	gw := ""
	for _, l := range lines {
		switch l.T {
		case LineConnect:
			sent, gw, pending = l.Val, l.Key, false
			if sent != "" {
				p, err := channel.ParsePosition(sent)
				if err != nil {
					res.fail("%s sent Last-Event-ID %q, which does not parse: %v", name, sent, err)
					continue
				}
				resumed, pending = p, true
				f.resumed(l.At, fmt.Sprintf("Last-Event-ID %s at %s", sent, gw), posKey{p.Epoch, p.Seq})
			}
		case LineSSEID:
			p, err := channel.ParsePosition(l.SID)
			switch {
			case err != nil:
				res.fail("%s: stream from %s starts with id %q: %v", name, gw, l.SID, err)
			case sent == "":
				epoch, next, known = p.Epoch, p.Seq+1, true // from now
			case p != resumed:
				res.fail("%s: resumed with Last-Event-ID %s at %s, the stream says it starts after %s", name, sent, gw, p)
			}
		case LineEvent:
			if l.Status == statusMalformed {
				res.fail("%s: malformed event from %s: %s", name, gw, l.Err)
				continue
			}
			res.Checked++
			here := channel.Position{Epoch: l.Epoch, Seq: l.Ver}
			if p, err := channel.ParsePosition(l.SID); err != nil || p != here {
				res.fail("%s: event id %q from %s does not name the event's position %s", name, l.SID, gw, here)
			}
			if r := l.Reset; r != nil && isRewound(r) && a.failover() && known {
				f.rewound(l, epoch, next)
				next, pending = r.From, false
				continue
			}
			if r := l.Reset; r != nil {
				if pending && resumed.Epoch != "" && r.OldEpoch == resumed.Epoch {
					resume.Checked++ // resumed across an epoch change, and told so first
				}
				if !known || !a.legitReset(r, epoch, next, l.At, finalEpoch) {
					res.fail("%s: reset %+v from %s while at %s:%d, where continuity was possible", name, *r, gw, epoch, next-1)
				}
				epoch, next, known, pending = l.Epoch, l.Ver+1, true, false
				continue
			}
			if pending && resumed.Epoch != "" && l.Epoch != resumed.Epoch {
				resume.Checked++
				resume.fail("%s: resumed after %s (Last-Event-ID) at %s, received message %s:%d of another epoch with no reset before it",
					name, sent, gw, l.Epoch, l.Ver)
				epoch, next = l.Epoch, l.Ver
			}
			pending = false
			if !known {
				epoch, next, known = l.Epoch, l.Ver, true
			}
			if epoch == "" {
				epoch = l.Epoch
			}
			if l.Epoch != epoch {
				res.fail("%s: message %s:%d from %s while following epoch %s, without a reset", name, l.Epoch, l.Ver, gw, epoch)
				epoch, next = l.Epoch, l.Ver
			}
			switch {
			case l.Ver < next:
				res.fail("%s: duplicate or out of order: seq %d after %d (from %s)", name, l.Ver, next-1, gw)
			case l.Ver > next:
				res.fail("%s: gap: seqs %d..%d never delivered (epoch %s, from %s)", name, next, l.Ver-1, epoch, gw)
			}
			next = max(next, l.Ver+1)
			f.deliver(l)
		}
	}
	f.finish()
	if !known {
		res.fail("%s never received a stream", name)
		return
	}
	if epoch != finalEpoch || next-1 != head {
		res.fail("%s ends at %s:%d, the head is %s:%d", name, epoch, next-1, finalEpoch, head)
	}
}

// checkResetRanges: every reset of every stream names a well-formed range: From is a seq (at
// least 1) and From <= To, or the range is open (every seq from From on). A Map's OnChange
// reset says that the replica loaded a new snapshot, not which seqs were lost: it names no
// range and is left out.
func (a *Analysis) checkResetRanges() *CheckResult {
	res := &CheckResult{Name: "reset-ranges"}
	for _, l := range a.Lines {
		if l.T != LineEvent || l.Reset == nil || l.Kind == StreamOnChange {
			continue
		}
		res.Checked++
		r := l.Reset
		if r.From == 0 || (!r.Open && r.From > r.To) {
			what := l.Node + " " + l.Kind
			if l.Gen != 0 {
				what += fmt.Sprintf(" #%d", l.Gen)
			}
			res.fail("%s: reset %s from %d to %d (open %v): not a range", what, r.Reason, r.From, r.To, r.Open)
		}
	}
	return res
}
