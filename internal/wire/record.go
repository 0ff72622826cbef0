package wire

import (
	"errors"
	"strconv"
	"strings"
)

// Op is one operation of a change record: a set of Key to Value, or a delete.
type Op struct {
	Del   bool
	Old   uint64 // the key's version before the write, 0 when absent
	Key   string
	Value string
}

// ErrNotRecord is returned by DecodeRecord for a message that is not a change record.
var ErrNotRecord = errors.New("not a map change record")

// DecodeRecord parses a change record: "m1 N" then per op "KIND OLD KLEN VLEN", a newline,
// then each op's key and value. See PROTOCOL.md, "Maps". It never panics.
func DecodeRecord(msg []byte) ([]Op, error) {
	s := string(msg)
	nl := strings.IndexByte(s, '\n')
	if nl < 0 || !strings.HasPrefix(s, "m1 ") {
		return nil, ErrNotRecord
	}
	f := strings.Fields(s[3:nl])
	body := s[nl+1:]
	if len(f) < 1 {
		return nil, ErrNotRecord
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n < 1 || len(f) != 1+4*n {
		return nil, ErrNotRecord
	}
	ops := make([]Op, n)
	off := 0
	for i := range ops {
		h := f[1+4*i : 5+4*i]
		if h[0] != "s" && h[0] != "d" {
			return nil, ErrNotRecord
		}
		old, err1 := strconv.ParseUint(h[1], 10, 64)
		kl, err2 := strconv.Atoi(h[2])
		vl, err3 := strconv.Atoi(h[3])
		if err1 != nil || err2 != nil || err3 != nil || kl < 0 || vl < 0 || kl > len(body)-off || vl > len(body)-off-kl {
			return nil, ErrNotRecord
		}
		ops[i] = Op{Del: h[0] == "d", Old: old, Key: body[off : off+kl], Value: body[off+kl : off+kl+vl]}
		off += kl + vl
	}
	if off != len(body) {
		return nil, ErrNotRecord
	}
	return ops, nil
}
