package channel

import (
	"errors"
	"strconv"
	"strings"
)

// envelope is a decoded pub/sub message: messages first..first+len(data)-1 of a log.
// The wire format is in PROTOCOL.md: "rs1 EPOCH FIRST TIME N LEN1 .. LENn\n" then the data.
type envelope struct {
	epoch string
	first uint64
	ms    int64
	data  []string // substrings of the received message
}

func (e *envelope) last() uint64 { return e.first + uint64(len(e.data)) - 1 }

var errJunk = errors.New("not a redisync envelope")

// maxEnvelopeMessages bounds N so that a forged header cannot make the decoder allocate much.
const maxEnvelopeMessages = 1 << 20

// decodeEnvelope parses msg. It never panics; anything malformed is errJunk.
func decodeEnvelope(msg string) (*envelope, error) {
	nl := strings.IndexByte(msg, '\n')
	if nl < 0 {
		return nil, errJunk
	}
	header, body := msg[:nl], msg[nl+1:]
	if !strings.HasPrefix(header, "rs1 ") {
		return nil, errJunk
	}
	f := strings.Fields(header[4:])
	if len(f) < 4 {
		return nil, errJunk
	}
	first, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil || first == 0 {
		return nil, errJunk
	}
	ms, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || ms < 0 {
		return nil, errJunk
	}
	n, err := strconv.Atoi(f[3])
	if err != nil || n < 1 || n > maxEnvelopeMessages || len(f) != 4+n || first+uint64(n) < first {
		return nil, errJunk
	}
	env := &envelope{epoch: f[0], first: first, ms: ms, data: make([]string, n)}
	off := 0
	for i := range n {
		l, err := strconv.Atoi(f[4+i])
		if err != nil || l < 0 || l > len(body)-off {
			return nil, errJunk
		}
		env.data[i] = body[off : off+l]
		off += l
	}
	if off != len(body) {
		return nil, errJunk
	}
	return env, nil
}
