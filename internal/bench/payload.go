package bench

import "encoding/binary"

// Every message the bench publishes starts with a header, the same for redisync and raw
// pub/sub: a kind byte, the message's index (little-endian uint64) and the time the publish
// call started (nanoseconds since the Runner's base time, little-endian int64). Filler makes up
// the rest of the configured size.
const headerSize = 1 + 8 + 8

// Kinds of message.
const (
	kindWarmUp   = 'w' // published before the measurement, not counted
	kindMeasured = 'm' // counted, and timed when latency is recorded
)

// newPayload returns a message buffer of size bytes with its filler written.
func newPayload(size int) []byte {
	b := make([]byte, size)
	for i := headerSize; i < size; i++ {
		b[i] = 'x'
	}
	return b
}

// stamp writes the header into b.
func stamp(b []byte, kind byte, index uint64, sent int64) {
	b[0] = kind
	binary.LittleEndian.PutUint64(b[1:9], index)
	binary.LittleEndian.PutUint64(b[9:17], uint64(sent))
}

// header reads the header of a received message; ok is false for anything the bench did not
// publish.
func header[T string | []byte](b T) (kind byte, index uint64, sent int64, ok bool) {
	if len(b) < headerSize || (b[0] != kindWarmUp && b[0] != kindMeasured) {
		return 0, 0, 0, false
	}
	return b[0], le64(b[1:9]), int64(le64(b[9:17])), true
}

func le64[T string | []byte](b T) uint64 {
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}
