package robustness

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// The linearizability check models each key of the map as a versioned register: a value and
// a version that every write raises (the version is the write's seq, so it only grows, across
// keys too). Set, Delete and CompareAndSet (which also reports the version it found on a
// conflict) and reads of Redis are the operations; a restart without persistence is an
// operation too, on every key, that empties it.
//
// An operation whose outcome is unknown (its context expired, its process was killed) may
// have taken effect at any time after its call, or never. When the log shows its unique
// value it did take effect, at the version the log gives; when the log of the epoch it could
// have landed in is complete and does not show it, it never did and is left out. Otherwise
// (a delete, or data Redis lost) it is modelled as either, which the model allows by being
// nondeterministic.

type regInput struct {
	Kind string // set, del, cas, read, wipe
	Key  string
	Val  string
	Exp  uint64
}

type regOutput struct {
	Status  string // ok, conflict, unknown
	Ver     uint64
	Actual  uint64
	Present bool
	Val     string
}

// regState is one key. Ver is the version of the last write (a delete's too); when Unknown,
// an unknown write came after it and the actual version is only known to be above Ver.
type regState struct {
	Ver     uint64
	Present bool
	Val     string
	Unknown bool
}

const statusUnknown = "unknown"

func regStep(st regState, in regInput, out regOutput) []regState {
	switch in.Kind {
	case "wipe":
		return []regState{{}}
	case OpRead:
		if !out.Present {
			if st.Present {
				return nil
			}
			return []regState{st}
		}
		if !st.Present || st.Val != out.Val {
			return nil
		}
		if st.Unknown {
			if out.Ver <= st.Ver {
				return nil
			}
			return []regState{{Ver: out.Ver, Present: true, Val: out.Val}}
		}
		if st.Ver != out.Ver {
			return nil
		}
		return []regState{st}
	case OpSet:
		if out.Status == statusUnknown {
			return []regState{st, {Ver: st.Ver, Present: true, Val: in.Val, Unknown: true}}
		}
		if out.Ver <= st.Ver {
			return nil
		}
		return []regState{{Ver: out.Ver, Present: true, Val: in.Val}}
	case OpDel:
		if out.Status == StatusAbsent {
			if st.Present {
				return nil // found nothing to delete while the key held a value
			}
			return []regState{st}
		}
		if out.Status == statusUnknown {
			return []regState{st, {Ver: st.Ver, Unknown: true}}
		}
		if out.Ver <= st.Ver {
			return nil
		}
		return []regState{{Ver: out.Ver}}
	case OpCAS:
		holds, base := false, st
		switch {
		case in.Exp == 0:
			holds = !st.Present
		case !st.Present:
		case st.Unknown:
			holds = in.Exp > st.Ver
			base = regState{Ver: in.Exp, Present: true, Val: st.Val}
		default:
			holds = st.Ver == in.Exp
		}
		switch out.Status {
		case StatusOK:
			if !holds || out.Ver <= base.Ver {
				return nil
			}
			return []regState{{Ver: out.Ver, Present: true, Val: in.Val}}
		case StatusConflict:
			switch {
			case out.Actual == in.Exp:
				return nil
			case !st.Present:
				if out.Actual != 0 {
					return nil
				}
				return []regState{st}
			case st.Unknown:
				if out.Actual <= st.Ver {
					return nil
				}
				return []regState{{Ver: out.Actual, Present: true, Val: st.Val}}
			case st.Ver != out.Actual:
				return nil
			}
			return []regState{st}
		default:
			if !holds {
				return []regState{st}
			}
			return []regState{st, {Ver: base.Ver, Present: true, Val: in.Val, Unknown: true}}
		}
	}
	return nil
}

func registerModel() porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
			byKey := map[string][]porcupine.Operation{}
			var keys []string
			var wipes []porcupine.Operation
			for _, op := range h {
				in := op.Input.(regInput)
				if in.Kind == "wipe" {
					wipes = append(wipes, op)
					continue
				}
				if _, ok := byKey[in.Key]; !ok {
					keys = append(keys, in.Key)
				}
				byKey[in.Key] = append(byKey[in.Key], op)
			}
			var out [][]porcupine.Operation
			for _, k := range keys {
				out = append(out, append(byKey[k], wipes...))
			}
			return out
		},
		Init: func() []any { return []any{regState{}} },
		Step: func(state, input, output any) []any {
			next := regStep(state.(regState), input.(regInput), output.(regOutput))
			out := make([]any, len(next))
			for i, s := range next {
				out[i] = s
			}
			return out
		},
		DescribeOperation: func(input, output any) string {
			in, _ := input.(regInput)
			out, _ := output.(regOutput)
			switch in.Kind {
			case "wipe":
				return "Redis restarted empty"
			case OpRead:
				if !out.Present {
					return fmt.Sprintf("read(%s) → absent", in.Key)
				}
				return fmt.Sprintf("read(%s) → %s@%d", in.Key, out.Val, out.Ver)
			case OpCAS:
				if out.Status == StatusConflict {
					return fmt.Sprintf("cas(%s, %s, if %d) → conflict, found %d", in.Key, in.Val, in.Exp, out.Actual)
				}
				return fmt.Sprintf("cas(%s, %s, if %d) → %s@%d", in.Key, in.Val, in.Exp, out.Status, out.Ver)
			case OpDel:
				if out.Status == StatusAbsent {
					return fmt.Sprintf("del(%s) → absent, nothing written", in.Key)
				}
				return fmt.Sprintf("del(%s) → %s@%d", in.Key, out.Status, out.Ver)
			}
			return fmt.Sprintf("set(%s, %s) → %s@%d", in.Key, in.Val, out.Status, out.Ver)
		},
		DescribeState: func(state any) string {
			s := state.(regState)
			v := fmt.Sprint(s.Ver)
			if s.Unknown {
				v = ">" + v
			}
			if !s.Present {
				return "absent@" + v
			}
			return s.Val + "@" + v
		},
	}
	return nm.ToModel()
}

// lostHistory reports, on a failover deployment, whether o belongs to a history a failover
// lost, and is left out of the model: an acknowledged write the final history does not hold
// (lost: neither ok nor failed), or an observation made while a failover that may lose
// writes was under way that only the lost history explains. Observations are taken at face
// value against the final history: a read of a value at a version where the final log holds
// that write of that key stays, and so does a conflict that reports a version at which the
// final log holds a write of that key, if that write was invoked before the observation
// returned; a read that found the key absent, a conflict that
// found it absent and a delete that found nothing are left out during such a failover (a lost
// delete would explain them). After the failover, nothing is left out: no one may see the
// lost history any more.
func (a *Analysis) lostHistory(o *opRec) bool {
	if lw := a.lost[o]; lw != nil && lw.failover {
		return true
	}
	if !a.inLossyWindow(o.Call, o.Ret) {
		return false
	}
	// survived: the final log holds a write of o's key at ver that was invoked before o
	// returned (a lost write's version may be handed out again later, to another write).
	survived := func(ver uint64) bool {
		c, ok := a.Redis.MapLog[ver]
		call, known := a.valCall[c.Val]
		return ok && !c.Del && c.Key == o.Key && known && (o.Ret == 0 || call < o.Ret)
	}
	switch {
	case o.Kind == OpRead && o.Status == StatusOK:
		return !o.Pres || !survived(o.Ver) || a.Redis.MapLog[o.Ver].Val != o.RVal
	case o.Status == StatusConflict:
		return o.Actual == 0 || !survived(o.Actual)
	case o.Status == StatusAbsent:
		return true
	}
	return false
}

// linearizationHistory builds the porcupine history of the map's operations.
func (a *Analysis) linearizationHistory() []porcupine.Operation {
	// Where the log of an epoch shows a value, the write of that value took effect there, at
	// that version; so does a read that returned it.
	type place struct {
		epoch string
		seq   uint64
	}
	appearances := map[string][]place{}
	for e, tr := range a.mapTruth {
		for s, c := range tr {
			if !c.Del {
				appearances[c.Val] = append(appearances[c.Val], place{e, s})
			}
		}
	}
	readAt := map[string]uint64{}
	for _, o := range a.ops {
		// A read of the history a failover lost says nothing of the final one: a write of unknown
		// outcome that only it saw was applied there, and is left out with it.
		if o.Kind == OpRead && o.Status == StatusOK && o.Pres && !(a.failover() && a.lostHistory(o)) {
			readAt[o.RVal] = o.Ver
		}
	}
	logComplete := a.Redis.MapFirst <= 1
	var end int64
	for _, o := range a.ops {
		end = max(end, o.Call, o.Ret)
	}
	for _, w := range a.Wipes {
		end = max(end, w.RestartDone)
	}
	end += int64(time.Second)

	clients := map[string]int{}
	client := func(o *opRec) int {
		k := fmt.Sprintf("%s.%d.%d", o.Node, o.Inc, o.W)
		id, ok := clients[k]
		if !ok {
			id = len(clients)
			clients[k] = id
		}
		return id
	}
	var h []porcupine.Operation
	add := func(o *opRec, out regOutput, ret int64, note string) {
		if ret == 0 {
			ret = end
		}
		h = append(h, porcupine.Operation{ClientId: client(o), Input: regInput{Kind: o.Kind, Key: o.Key, Val: o.Val, Exp: o.Exp},
			Output: out, Call: o.Call, Return: ret, Metadata: fmt.Sprintf("%s.%d op %d%s", o.Node, o.Inc, o.ID, note)})
	}
	a.dropped = 0
	for _, o := range a.ops {
		if o.Kind == OpPub {
			continue
		}
		if a.failover() && a.lostHistory(o) {
			a.dropped++
			continue
		}
		// The version the primary outcome stands for, to tell the other appearances of the
		// value: applications in an epoch Redis lost before the op's retry applied it again.
		primary := uint64(0)
		switch {
		case o.Kind == OpRead:
			if o.Status == StatusOK {
				add(o, regOutput{Status: StatusOK, Present: o.Pres, Ver: o.Ver, Val: o.RVal}, o.Ret, "")
			}
			continue // a failed read changed nothing
		case o.Status == StatusConflict:
			add(o, regOutput{Status: StatusConflict, Actual: o.Actual}, o.Ret, "")
		case o.Status == StatusAbsent:
			add(o, regOutput{Status: StatusAbsent}, o.Ret, "")
			continue // it wrote nothing, before or after any restart
		case o.applied():
			primary = o.Ver
			add(o, regOutput{Status: StatusOK, Ver: o.Ver}, o.Ret, "")
		case o.Kind != OpDel && len(appearances[o.Val]) > 0:
			primary = appearances[o.Val][0].seq
			for _, p := range appearances[o.Val] {
				if p.epoch == a.Redis.MapEpoch {
					primary = p.seq
				}
			}
			add(o, regOutput{Status: StatusOK, Ver: primary}, end, " (outcome from the log)")
		case o.Kind != OpDel && readAt[o.Val] > 0:
			primary = readAt[o.Val]
			add(o, regOutput{Status: StatusOK, Ver: primary}, end, " (outcome from a read)")
		case o.Kind != OpDel && logComplete && !a.wipedAfter(o.Call):
			continue // not in the complete log of the only epoch it could be in: never applied
		default:
			add(o, regOutput{Status: statusUnknown}, end, " (outcome unknown)")
		}
		if a.Scenario != ScenarioWipe {
			continue
		}
		// A write in flight across a restart without persistence may have been applied before
		// it, then retried and applied again after it (Redis forgot its idempotency token too).
		ghosts := 0
		for _, p := range appearances[o.Val] {
			if o.Kind != OpDel && p.epoch != a.Redis.MapEpoch && p.seq != primary {
				add(o, regOutput{Status: StatusOK, Ver: p.seq}, o.Ret, " (also applied in a lost epoch)")
				ghosts++
			}
		}
		for _, w := range a.Wipes {
			if ghosts == 0 && o.Call < w.KillStart && (o.Ret == 0 || o.Ret > w.KillStart) {
				add(o, regOutput{Status: statusUnknown}, w.RestartDone, " (maybe applied before a restart)")
				break
			}
		}
	}
	wipeClient := len(clients)
	for _, w := range a.Wipes {
		h = append(h, porcupine.Operation{ClientId: wipeClient, Input: regInput{Kind: "wipe"}, Output: regOutput{},
			Call: w.KillStart, Return: w.RestartDone, Metadata: "restart without persistence"})
	}
	return h
}

// checkLinearizable checks the map's history per key with porcupine; on failure it writes
// the visualization into dir.
func (a *Analysis) checkLinearizable(dir string, seed uint64, timeout time.Duration) *CheckResult {
	res := &CheckResult{Name: "linearizable"}
	h := a.linearizationHistory()
	res.Checked = len(h)
	model := registerModel()
	result, info := porcupine.CheckOperationsVerbose(model, h, timeout)
	switch result {
	case porcupine.Ok:
	case porcupine.Unknown:
		res.fail("porcupine gave no answer within %v over %d operations", timeout, len(h))
	default:
		keys := failingKeys(model, h, timeout)
		path := filepath.Join(dir, fmt.Sprintf("linearizability-seed%d.html", seed))
		if err := porcupine.VisualizePath(model, info, path); err != nil {
			res.fail("history not linearizable (keys %s); writing the visualization failed: %v", keys, err)
		} else {
			res.fail("history not linearizable (keys %s); visualization: %s", keys, path)
		}
	}
	return res
}

// failingKeys names the keys whose histories porcupine finds not linearizable, and for each
// the last operation of its longest linearizable prefix.
func failingKeys(model porcupine.Model, h []porcupine.Operation, timeout time.Duration) string {
	var out []string
	for _, part := range model.Partition(h) {
		if porcupine.CheckOperationsTimeout(model, part, timeout) != porcupine.Illegal {
			continue
		}
		key := ""
		for _, op := range part {
			if in := op.Input.(regInput); in.Kind != "wipe" {
				key = in.Key
				break
			}
		}
		out = append(out, key)
	}
	return strings.Join(out, ", ")
}
