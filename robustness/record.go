package robustness

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/internal/wire"
)

// Line types: one line of a node's history. A process node writes them as JSON lines.
const (
	LineCall      = "call"      // an operation is invoked (written before it is sent)
	LineReturn    = "ret"       // it returned; a call without a return has an unknown outcome
	LineEvent     = "ev"        // a stream delivered an event
	LineViolation = "violation" // a check made inside the node failed (versions went down)
	LineStopped   = "stopped"   // the node's workload has stopped and every op has returned
	LineFinal     = "final"     // the node's state after convergence
	LineNote      = "note"      // anything worth logging
	LineStart     = "start"     // a FromNow stream was set up (At: when Subscribe, Events or Watch returned)
	LineEnd       = "end"       // a FromNow stream stopped (Epoch, Ver: the head it had to reach; Status: reached or not)
	LineConnect   = "conn"      // an SSE client connects (Val: the Last-Event-ID it sends, Key: the gateway)
	LineSSEID     = "sid"       // an SSE client read an id without data (the position a stream starts after)
)

// ViolationRYW is the Kind of a read-your-writes violation (ID: the write's op, Key, Ver).
const ViolationRYW = "ryw"

// Operation kinds.
const (
	OpSet  = "set"
	OpDel  = "del"
	OpCAS  = "cas"
	OpRead = "read" // HGET of the map's state in Redis: a linearizable read
	OpPub  = "pub"  // channel publish
)

// Stream kinds.
const (
	StreamWatch    = "watch"    // Map.Watch, resumed across process restarts
	StreamOnChange = "onchange" // Config.OnChange of one Map (Gen), started anew with each Map
	StreamSub      = "sub"      // channel subscription, resumed across process restarts

	// FromNow streams, started throughout a run while others write, each for a short while
	// (Gen numbers them within a node incarnation).
	StreamNowSub      = "now-sub"      // channel.Client.Subscribe(FromNow)
	StreamNowEvents   = "now-events"   // channel.Client.Events(FromNow)
	StreamNowWatch    = "now-watch"    // replmap.Watch(FromNow)
	StreamNowMapWatch = "now-mapwatch" // Map.Watch(FromNow)

	// SSE clients of the nodes' gateways (Node: the client's name), resumed with
	// Last-Event-ID across disconnections, gateways and faults.
	StreamSSEChan = "sse-chan" // GET /v1/channels/{channel}/events
	StreamSSEMap  = "sse-map"  // GET /v1/maps/{map}/watch
)

// Probe end statuses (LineEnd).
const (
	EndReached   = "reached"   // the stream delivered up to the head read when it was told to stop
	EndUnreached = "unreached" // it stopped before (its obligations end at its last event)
)

// isMapStream reports whether a stream kind carries map changes (else channel messages).
func isMapStream(kind string) bool {
	switch kind {
	case StreamWatch, StreamOnChange, StreamNowWatch, StreamNowMapWatch, StreamSSEMap:
		return true
	}
	return false
}

// isNowStream reports whether kind is a FromNow stream of the library.
func isNowStream(kind string) bool {
	switch kind {
	case StreamNowSub, StreamNowEvents, StreamNowWatch, StreamNowMapWatch:
		return true
	}
	return false
}

// isSSEStream reports whether kind is an SSE client's stream.
func isSSEStream(kind string) bool { return kind == StreamSSEChan || kind == StreamSSEMap }

// Return statuses.
const (
	StatusOK       = "ok"
	StatusConflict = "conflict"
	StatusAbsent   = "absent" // a delete of an absent key: nothing was written (replmap.ErrNotFound)
	StatusError    = "error"  // outcome unknown, unless Ver > 0 (the write was applied at Ver)
)

// Line is one record of a node's history.
type Line struct {
	T    string `json:"t"`
	Node string `json:"node"`
	Inc  int    `json:"inc,omitempty"` // incarnation of a process node, from 1
	At   int64  `json:"at"`            // Unix nanoseconds
	ID   uint64 `json:"id,omitempty"`  // op id, unique within (Node, Inc)
	W    int    `json:"w,omitempty"`   // worker of the op within its node
	Kind string `json:"kind,omitempty"`
	Gen  int    `json:"gen,omitempty"` // OnChange: which Map of the node incarnation

	Key string `json:"key,omitempty"`
	Val string `json:"val,omitempty"` // set/cas: the value; read: the value read; pub and sub: the payload id
	Exp uint64 `json:"exp,omitempty"` // cas: expected version (0: absent)

	Status  string `json:"st,omitempty"`
	Ver     uint64 `json:"ver,omitempty"` // write: its seq; read: the version read; event: seq
	Epoch   string `json:"ep,omitempty"`
	Entry   string `json:"en,omitempty"`   // event: the id of its log entry (channel.Position.Entry)
	Actual  uint64 `json:"act,omitempty"`  // conflict: the key's version in Redis
	Present bool   `json:"pres,omitempty"` // read: the key exists
	Del     bool   `json:"del,omitempty"`  // watch/onchange event of a delete
	Old     uint64 `json:"old,omitempty"`  // watch/onchange event: the key's version before
	Err     string `json:"err,omitempty"`
	SID     string `json:"sid,omitempty"` // SSE: the event's id as received

	Reset *ResetInfo `json:"reset,omitempty"`
	Final *Final     `json:"final,omitempty"`
}

// ResetInfo is a channel.Reset as recorded.
type ResetInfo struct {
	Reason   string `json:"reason"`
	From     uint64 `json:"from,omitempty"`
	To       uint64 `json:"to,omitempty"`
	Open     bool   `json:"open,omitempty"` // no known upper bound: every seq from From on
	OldEpoch string `json:"old,omitempty"`
	NewEpoch string `json:"new,omitempty"`
}

func resetInfo(r *channel.Reset) *ResetInfo {
	return &ResetInfo{Reason: string(r.Reason), From: r.From, To: r.To, Open: r.Open, OldEpoch: r.OldEpoch, NewEpoch: r.NewEpoch}
}

// Stored is a key's version and value.
type Stored struct {
	Ver uint64 `json:"v"`
	Val string `json:"s"`
}

// Final is what a node reports after convergence.
type Final struct {
	Converged bool              `json:"converged"`
	Err       string            `json:"err,omitempty"` // why it did not converge
	Map       channel.Position  `json:"map"`           // the replica's position
	Watch     channel.Position  `json:"watch"`         // last position delivered to the watch
	Sub       channel.Position  `json:"sub"`           // last position delivered to the subscription
	State     map[string]Stored `json:"state"`         // the replica's entries
	Verified  bool              `json:"verified"`      // Verify returned a result
	Match     bool              `json:"match"`         // and it matched
	Verify    string            `json:"verify,omitempty"`
	Obs       int               `json:"obs"`     // version observations made by the node's own checks
	Retries   uint64            `json:"retries"` // script calls the node's channel client repeated
}

// Targets are the heads a node must reach to have converged.
type Targets struct {
	Map  channel.Position `json:"map"`
	Chan channel.Position `json:"chan"`
}

// command is what the harness sends to a process node on its stdin, one JSON object a line.
type command struct {
	Cmd     string  `json:"cmd"` // stop, converge, close
	Targets Targets `json:"targets"`
	Timeout int64   `json:"timeout"` // ns, for converge
}

func parseLine(b []byte) (Line, error) {
	var l Line
	err := json.Unmarshal(b, &l)
	return l, err
}

// payloadID returns the id a published payload starts with ("ID|padding").
func payloadID(data []byte) string {
	s := string(data)
	if i := strings.IndexByte(s, '|'); i >= 0 {
		return s[:i]
	}
	return s
}

// splitStored splits a map state value "VERSION:VALUE" (PROTOCOL.md, section 7).
func splitStored(s string) (Stored, error) {
	st, err := wire.ParseStored(s)
	if err != nil {
		return Stored{}, err
	}
	return Stored{Ver: st.Version, Val: st.Value}, nil
}

// change is one operation of a map change record.
type change struct {
	Del bool
	Old uint64
	Key string
	Val string
}

// decodeRecord parses a map change record with the protocol's decoder.
func decodeRecord(b string) ([]change, error) {
	ops, err := wire.DecodeRecord([]byte(b))
	if err != nil {
		return nil, fmt.Errorf("%w: %q", err, clip(b))
	}
	out := make([]change, len(ops))
	for i, o := range ops {
		out[i] = change{Del: o.Del, Old: o.Old, Key: o.Key, Val: o.Value}
	}
	return out, nil
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
