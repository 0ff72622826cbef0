package robustness

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/redisync/redisync/channel"
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
	v, val, ok := strings.Cut(s, ":")
	ver, err := strconv.ParseUint(v, 10, 64)
	if !ok || err != nil || ver == 0 {
		return Stored{}, fmt.Errorf("state value %q is not VERSION:VALUE", s)
	}
	return Stored{Ver: ver, Val: val}, nil
}

// change is one operation of a map change record.
type change struct {
	Del bool
	Old uint64
	Key string
	Val string
}

// decodeRecord parses a map change record as PROTOCOL.md (section 7) specifies it, written
// here again from the document so that the checker does not trust the library's decoder.
func decodeRecord(b string) ([]change, error) {
	header, body, ok := strings.Cut(b, "\n")
	f := strings.Fields(header)
	if !ok || len(f) < 2 || f[0] != "m1" {
		return nil, fmt.Errorf("not a change record: %q", clip(b))
	}
	n, err := strconv.Atoi(f[1])
	if err != nil || n < 1 || len(f) != 2+4*n {
		return nil, fmt.Errorf("bad change record header %q", header)
	}
	out := make([]change, n)
	for i := range out {
		h := f[2+4*i : 6+4*i]
		old, err1 := strconv.ParseUint(h[1], 10, 64)
		kl, err2 := strconv.Atoi(h[2])
		vl, err3 := strconv.Atoi(h[3])
		if (h[0] != "s" && h[0] != "d") || err1 != nil || err2 != nil || err3 != nil || kl < 0 || vl < 0 || kl+vl > len(body) {
			return nil, fmt.Errorf("bad change record header %q", header)
		}
		out[i] = change{Del: h[0] == "d", Old: old, Key: body[:kl], Val: body[kl : kl+vl]}
		body = body[kl+vl:]
	}
	if body != "" {
		return nil, fmt.Errorf("change record has %d bytes too many", len(body))
	}
	return out, nil
}

// envelope is a decoded envelope: messages first, first+1, … of a log.
type envelope struct {
	epoch string
	first uint64
	data  []string
}

// decodeEnvelope parses an envelope as PROTOCOL.md (section 3) specifies it:
// "rs2 EPOCH FIRST TIME ID PREV N LEN1 … LENn\n" then the messages (or, version 1, "rs1 EPOCH
// FIRST TIME N LEN1 … LENn\n"), written here again from the document. A log entry holds the
// envelope of one publish call in its field "e".
func decodeEnvelope(b string) (envelope, error) {
	header, body, ok := strings.Cut(b, "\n")
	f := strings.Fields(header)
	if !ok || len(f) < 6 || f[0] != "rs1" && f[0] != "rs2" {
		return envelope{}, fmt.Errorf("not an envelope: %q", clip(b))
	}
	if f[0] == "rs2" {
		if len(f) < 8 {
			return envelope{}, fmt.Errorf("bad envelope header %q", clip(header))
		}
		f = append(f[:4], f[6:]...) // drop the entry's id and prev
	}
	first, err1 := strconv.ParseUint(f[2], 10, 64)
	n, err2 := strconv.Atoi(f[4])
	if err1 != nil || err2 != nil || first == 0 || n < 1 || len(f) != 5+n {
		return envelope{}, fmt.Errorf("bad envelope header %q", clip(header))
	}
	env := envelope{epoch: f[1], first: first, data: make([]string, n)}
	for i := range n {
		l, err := strconv.Atoi(f[5+i])
		if err != nil || l < 0 || l > len(body) {
			return envelope{}, fmt.Errorf("bad envelope header %q", clip(header))
		}
		env.data[i], body = body[:l], body[l:]
	}
	if body != "" {
		return envelope{}, fmt.Errorf("envelope has %d bytes too many", len(body))
	}
	return env, nil
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
