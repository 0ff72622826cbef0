package channel

import (
	"errors"
	"strconv"
	"strings"
)

// envelope is a decoded pub/sub message: messages first..first+len(data)-1 of a log, held by
// the log entry named id, which follows the entry named prev. The wire format is in
// PROTOCOL.md: "rs2 EPOCH FIRST TIME ID PREV N LEN1 .. LENn\n" then the data. Version 1
// envelopes ("rs1 EPOCH FIRST TIME N LEN1 .. LENn\n", written by older publishers) are read
// too, with id and prev unknown.
type envelope struct {
	epoch    string
	first    uint64
	ms       int64
	id, prev string   // "" when unknown
	data     []string // substrings of the received message
}

func (e *envelope) last() uint64 { return e.first + uint64(len(e.data)) - 1 }

var errJunk = errors.New("not a redisync envelope")

// maxEnvelopeMessages bounds N so that a forged header cannot make the decoder allocate much.
const maxEnvelopeMessages = 1 << 20

// decodeEnvelope parses msg. It never panics; anything malformed is errJunk.
func decodeEnvelope(msg string) (*envelope, error) {
	nl := strings.IndexByte(msg, '\n')
	v2 := strings.HasPrefix(msg, "rs2 ")
	if nl < 0 || !v2 && !strings.HasPrefix(msg, "rs1 ") {
		return nil, errJunk
	}
	h := header{rest: msg[4:nl]}
	env := &envelope{epoch: h.word()}
	first, ok1 := h.uint()
	ms, ok2 := h.uint()
	if v2 {
		env.id, env.prev = chainID(h.word()), chainID(h.word())
		if env.id == "" {
			return nil, errJunk
		}
	}
	n, ok3 := h.uint()
	if env.epoch == "" || !ok1 || !ok2 || !ok3 || first == 0 || ms > 1<<62 || n < 1 || n > maxEnvelopeMessages || first+n < first {
		return nil, errJunk
	}
	env.first, env.ms = first, int64(ms)
	env.data = make([]string, n)
	body := msg[nl+1:]
	off := 0
	for i := range env.data {
		l, ok := h.uint()
		if !ok || l > uint64(len(body)-off) {
			return nil, errJunk
		}
		env.data[i] = body[off : off+int(l)]
		off += int(l)
	}
	if h.rest != "" || off != len(body) {
		return nil, errJunk
	}
	return env, nil
}

// header reads the space-separated words of an envelope's first line.
type header struct{ rest string }

func (h *header) word() string {
	w, rest, _ := strings.Cut(h.rest, " ")
	h.rest = rest
	return w
}

func (h *header) uint() (uint64, bool) {
	w := h.word()
	if w == "" || len(w) > 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(w, 10, 64)
	return n, err == nil
}

// chainID reads an entry id of the wire: "-" (unknown) is "".
func chainID(w string) string {
	if w == "-" {
		return ""
	}
	return w
}
