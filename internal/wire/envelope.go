package wire

import (
	"errors"
	"strconv"
	"strings"
)

// Envelope is a decoded pub/sub message: messages first..first+len(data)-1 of a log, held by
// the log entry named id, which follows the entry named prev. The wire format is in
// PROTOCOL.md: "rs2 EPOCH FIRST TIME ID PREV N LEN1 .. LENn\n" then the data. Version 1
// envelopes ("rs1 EPOCH FIRST TIME N LEN1 .. LENn\n", written by older publishers) are read
// too, with id and prev unknown.
type Envelope struct {
	Epoch    string
	First    uint64
	Ms       int64    // Redis's time of the publish, in milliseconds
	ID, Prev string   // "" when unknown
	Data     []string // substrings of the received message
}

// Last is the seq of the envelope's last message.
func (e *Envelope) Last() uint64 { return e.First + uint64(len(e.Data)) - 1 }

// ErrJunk is returned by DecodeEnvelope for anything that is not an envelope.
var ErrJunk = errors.New("not a redisync envelope")

// maxEnvelopeMessages bounds N so that a forged header cannot make the decoder allocate much.
const maxEnvelopeMessages = 1 << 20

// DecodeEnvelope parses msg. It never panics; anything malformed is ErrJunk.
func DecodeEnvelope(msg string) (*Envelope, error) {
	nl := strings.IndexByte(msg, '\n')
	v2 := strings.HasPrefix(msg, "rs2 ")
	if nl < 0 || !v2 && !strings.HasPrefix(msg, "rs1 ") || msg[nl-1] == ' ' {
		return nil, ErrJunk
	}
	h := header{rest: msg[4:nl]}
	env := &Envelope{Epoch: h.word()}
	first, ok1 := h.uint()
	ms, ok2 := h.uint()
	if v2 {
		env.ID, env.Prev = ChainID(h.word()), ChainID(h.word())
		if env.ID == "" {
			return nil, ErrJunk
		}
	}
	n, ok3 := h.uint()
	if env.Epoch == "" || !ok1 || !ok2 || !ok3 || first == 0 || ms > 1<<62 || n < 1 || n > maxEnvelopeMessages || first+n < first {
		return nil, ErrJunk
	}
	env.First, env.Ms = first, int64(ms)
	env.Data = make([]string, n)
	body := msg[nl+1:]
	off := 0
	for i := range env.Data {
		l, ok := h.uint()
		if !ok || l > uint64(len(body)-off) {
			return nil, ErrJunk
		}
		env.Data[i] = body[off : off+int(l)]
		off += int(l)
	}
	if h.rest != "" || off != len(body) {
		return nil, ErrJunk
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

// ChainID reads an entry id of the wire: "-" (unknown) is "".
func ChainID(w string) string {
	if w == "-" {
		return ""
	}
	return w
}

// Pack encodes messages as the publish script takes them (PROTOCOL.md section 2): COUNTS, the
// number of messages and the length of each as the envelope's header writes them ("n l1 … ln"),
// and DATA, the messages concatenated. Lua builds the envelope from the two with one
// concatenation, where assembling many arguments would cost Redis more than the rest of the
// script.
func Pack(msgs ...[]byte) []string {
	counts := strconv.AppendInt(make([]byte, 0, 4+5*len(msgs)), int64(len(msgs)), 10)
	size := 0
	for _, m := range msgs {
		counts = append(counts, ' ')
		counts = strconv.AppendInt(counts, int64(len(m)), 10)
		size += len(m)
	}
	var body strings.Builder
	body.Grow(size)
	for _, m := range msgs {
		body.Write(m)
	}
	return []string{string(counts), body.String()}
}
