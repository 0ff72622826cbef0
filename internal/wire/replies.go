package wire

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/rueidis"
)

// ErrMalformed is matched by the error of a reply that does not have the protocol's form (a
// log entry that is not an envelope, a seq that is not a number): retrying cannot help.
var ErrMalformed = errors.New("malformed reply")

// strs converts a script's flat reply to strings; nil elements are reported through nils.
func strs(what string, vs []rueidis.RedisMessage) (out []string, nils []bool, err error) {
	out, nils = make([]string, len(vs)), make([]bool, len(vs))
	for i, v := range vs {
		if v.IsNil() {
			nils[i] = true
			continue
		}
		if out[i], err = v.ToString(); err != nil {
			return nil, nil, fmt.Errorf("%s reply, value %d: %w", what, i, err)
		}
	}
	return out, nils, nil
}

func seqOf(what, s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s reply: %q is not a seq", ErrMalformed, what, s)
	}
	return n, nil
}

// Appended is the reply of the publish script: the epoch, the seq of the first message, and
// whether the call had been applied before (a retry answered from the idempotency record).
type Appended struct {
	Epoch  string
	First  uint64
	Repeat bool
}

// ParsePublish parses the publish script's reply [epoch, FIRST, "0"|"1"].
func ParsePublish(vs []rueidis.RedisMessage) (Appended, error) {
	s, _, err := strs("publish script", vs)
	if err != nil {
		return Appended{}, err
	}
	if len(s) != 3 || (s[2] != "0" && s[2] != "1") {
		return Appended{}, fmt.Errorf("publish script returned %q", s)
	}
	first, err := seqOf("publish script", s[1])
	if err != nil || first == 0 {
		return Appended{}, fmt.Errorf("publish script returned %q", s)
	}
	return Appended{Epoch: s[0], First: first, Repeat: s[2] == "1"}, nil
}

// WriteStatus is the outcome of one map write.
type WriteStatus int

// The outcomes of a write.
const (
	WriteOK       WriteStatus = iota // applied as Seq
	WriteConflict                    // a guard failed: operation Index (0-based) found version Actual
	WriteNotFound                    // every operation deleted an absent key: nothing was written
)

// Written is the reply of the write script.
type Written struct {
	Epoch  string
	Seq    uint64
	Status WriteStatus
	Index  int    // WriteConflict: the failing operation, 0-based
	Actual uint64 // WriteConflict: its key's version
}

// ParseWrite parses the write script's reply: [epoch, S, "ok"|"dup"], [epoch, "0", "notfound"]
// or [epoch, "0", "conflict", I, ACTUAL] with I 1-based; nops is the number of operations sent.
func ParseWrite(vs []rueidis.RedisMessage, nops int) (Written, error) {
	s, _, err := strs("write script", vs)
	if err != nil {
		return Written{}, err
	}
	if len(s) < 3 {
		return Written{}, malformedWrite(s)
	}
	w := Written{Epoch: s[0]}
	if w.Seq, err = seqOf("write script", s[1]); err != nil {
		return Written{}, malformedWrite(s)
	}
	switch s[2] {
	case "ok", "dup":
		if len(s) != 3 || w.Seq == 0 {
			return Written{}, malformedWrite(s)
		}
		w.Status = WriteOK
	case "notfound":
		w.Status = WriteNotFound
	case "conflict":
		if len(s) != 5 {
			return Written{}, malformedWrite(s)
		}
		i, err1 := strconv.Atoi(s[3])
		actual, err2 := strconv.ParseUint(s[4], 10, 64)
		if err1 != nil || err2 != nil || i < 1 || i > nops {
			return Written{}, malformedWrite(s)
		}
		w.Status, w.Index, w.Actual = WriteConflict, i-1, actual
	default:
		return Written{}, malformedWrite(s)
	}
	return w, nil
}

// malformedWrite is the error of a write script's reply s that does not have the protocol's form.
func malformedWrite(s []string) error {
	return fmt.Errorf("%w: write script returned %q", ErrMalformed, s)
}

// ParseWriteGroup parses the write script's reply to a group of writes: [epoch, FIRST, "group",
// then one outcome per write: "ok", "notfound" or "conflict I ACTUAL"]. The writes that are
// "ok" have seqs FIRST, FIRST+1, … in order. nops[w] is the number of operations of write w.
func ParseWriteGroup(vs []rueidis.RedisMessage, nops []int) ([]Written, error) {
	s, _, err := strs("write script", vs)
	if err != nil {
		return nil, err
	}
	if len(s) != 3+len(nops) || s[2] != "group" {
		return nil, malformedWrite(s)
	}
	next, err := seqOf("write script", s[1])
	if err != nil {
		return nil, malformedWrite(s)
	}
	out := make([]Written, len(nops))
	for i, r := range s[3:] {
		w := Written{Epoch: s[0]}
		switch {
		case r == "ok" && next > 0:
			w.Seq, w.Status = next, WriteOK
			next++
		case r == "notfound":
			w.Status = WriteNotFound
		case strings.HasPrefix(r, "conflict "):
			f := strings.Fields(r)
			if len(f) != 3 {
				return nil, malformedWrite(s)
			}
			idx, err1 := strconv.Atoi(f[1])
			actual, err2 := strconv.ParseUint(f[2], 10, 64)
			if err1 != nil || err2 != nil || idx < 1 || idx > nops[i] {
				return nil, malformedWrite(s)
			}
			w.Status, w.Index, w.Actual = WriteConflict, idx-1, actual
		default:
			return nil, malformedWrite(s)
		}
		out[i] = w
	}
	return out, nil
}

// Fetched is what the fetch script read: the channel's epoch, head and tip, and the log
// entries that hold the seqs asked for, in seq order.
type Fetched struct {
	Epoch   string
	Head    uint64
	Tip     string // id of the newest entry, "" when unknown
	Entries []*Envelope
}

// ReadLog runs the fetch script once on channel k: its epoch, head and tip, and up to count
// log entries holding seqs from from on, stopping past budget bytes. A non-empty kind is
// checked: a name of another kind is a *KindError.
func ReadLog(ctx context.Context, rc rueidis.Client, k Keys, kind Kind, from uint64, count, budget int) (Fetched, error) {
	vs, err := Fetch.Exec(ctx, rc, []string{k.Meta, k.Log},
		[]string{strconv.FormatUint(from, 10), strconv.Itoa(count), strconv.Itoa(budget), string(kind)}).ToArray()
	if err != nil {
		return Fetched{}, AsKindError(err, k.Name, kind)
	}
	return ParseFetch(vs)
}

// ParseFetch parses the fetch script's reply [epoch, head, tip, envelope…]. An entry that is
// not an envelope ends the entries returned; when it comes first, it is an error matching
// ErrMalformed (a reader cannot go past it without skipping messages).
func ParseFetch(vs []rueidis.RedisMessage) (Fetched, error) {
	s, _, err := strs("fetch script", vs)
	if err != nil {
		return Fetched{}, err
	}
	if len(s) < 3 {
		return Fetched{}, fmt.Errorf("%w: fetch script returned %d values, want at least 3", ErrMalformed, len(s))
	}
	f := Fetched{Epoch: s[0], Tip: ChainID(s[2])}
	if f.Head, err = seqOf("fetch script", s[1]); err != nil {
		return Fetched{}, err
	}
	f.Entries = make([]*Envelope, 0, len(s)-3)
	for i, e := range s[3:] {
		env, err := DecodeEnvelope(e)
		if err == nil {
			f.Entries = append(f.Entries, env)
			continue
		}
		if i > 0 {
			break // the entries before it are good: the next read starts at it
		}
		return Fetched{}, fmt.Errorf("%w: log entry %.40q is not an envelope this client can read", ErrMalformed, e)
	}
	return f, nil
}

// ParseHeads parses the heads script's reply: epoch, head, tip for each channel, in order.
func ParseHeads(vs []rueidis.RedisMessage) ([]Fetched, error) {
	s, _, err := strs("heads script", vs)
	if err != nil {
		return nil, err
	}
	if len(s)%3 != 0 {
		return nil, fmt.Errorf("heads script returned %d values, want a multiple of 3", len(s))
	}
	out := make([]Fetched, 0, len(s)/3)
	for i := 0; i < len(s); i += 3 {
		f := Fetched{Epoch: s[i], Tip: ChainID(s[i+2])}
		if f.Head, err = seqOf("heads script", s[i+1]); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// Stored is a map's key as Redis stores it.
type Stored struct {
	Version uint64
	Value   string
	Absent  bool
}

// ParseStored splits a stored value "VERSION:VALUE".
func ParseStored(s string) (Stored, error) {
	v, val, ok := strings.Cut(s, ":")
	ver, err := strconv.ParseUint(v, 10, 64)
	if !ok || err != nil || ver == 0 {
		return Stored{}, fmt.Errorf("stored value %.40q is not \"VERSION:VALUE\"", s)
	}
	return Stored{Version: ver, Value: val}, nil
}

// GotKey is the reply of the get script: the map's epoch and head, and the key.
type GotKey struct {
	Epoch string
	Head  uint64
	Key   Stored
}

// ParseGet parses the get script's reply [epoch, head, VERSION:VALUE or nil].
func ParseGet(vs []rueidis.RedisMessage) (GotKey, error) {
	s, nils, err := strs("get script", vs)
	if err != nil {
		return GotKey{}, err
	}
	if len(s) != 3 || nils[0] || nils[1] {
		return GotKey{}, fmt.Errorf("get script returned %q", s)
	}
	g := GotKey{Epoch: s[0]}
	if g.Head, err = seqOf("get script", s[1]); err != nil {
		return GotKey{}, err
	}
	if nils[2] {
		g.Key.Absent = true
		return g, nil
	}
	if g.Key, err = ParseStored(s[2]); err != nil {
		return GotKey{}, err
	}
	return g, nil
}

// MapMeta is a map's position and digest as Redis keeps them in its meta hash.
type MapMeta struct {
	Epoch  string
	Seq    uint64
	Digest Digest
	Keys   int
}

// MapMetaFields are the fields to HMGET from a map's meta hash for ParseMapMeta.
var MapMetaFields = []string{"epoch", "seq", "dx", "dy", "n"}

// ParseMapMeta parses HMGET meta epoch seq dx dy n. A map without history has all zero.
func ParseMapMeta(vs []rueidis.RedisMessage) (MapMeta, error) {
	s, nils, err := strs("map meta", vs)
	if err != nil {
		return MapMeta{}, err
	}
	if len(s) != len(MapMetaFields) {
		return MapMeta{}, fmt.Errorf("map meta: %d values, want %d", len(s), len(MapMetaFields))
	}
	var m MapMeta
	if nils[0] {
		return m, nil
	}
	m.Epoch = s[0]
	nums := make([]uint64, 4)
	for i := range nums {
		if nils[i+1] {
			continue // a channel that no map write has touched yet
		}
		if nums[i], err = strconv.ParseUint(s[i+1], 10, 64); err != nil {
			return MapMeta{}, fmt.Errorf("map meta: %s %q is not a number", MapMetaFields[i+1], s[i+1])
		}
	}
	m.Seq, m.Digest, m.Keys = nums[0], Digest{X: nums[1], Y: nums[2]}, int(nums[3])
	return m, nil
}
