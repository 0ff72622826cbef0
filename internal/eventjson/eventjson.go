// Package eventjson is the one JSON form of redisync's events: the lines of the CLI's
// `sub --json` and `watch --json`, the data of the gateway's Server-Sent Events, and what the
// robustness suite reads back. One type, one encoder per kind of event.
package eventjson

import (
	"encoding/base64"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/replmap"
)

// TimeFormat is how event times are written: RFC 3339 in UTC with milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// Event is one event as JSON: a channel's message (Data), a map's write (Changes), one change
// of a write (the CLI's watch lines: the Change fields inline), a reset (Reset), or the start
// of a stream (the position alone). Seq, Epoch and Pos are the event's position; for a reset,
// the position the stream continues after.
type Event struct {
	Seq   uint64 `json:"seq"`
	Epoch string `json:"epoch"`
	Pos   string `json:"pos"`
	// Entry is the id of the log entry holding the message (channel.Position.Entry): sent back
	// with the position ("EPOCH:SEQ:ENTRY"), a resume is checked against the log.
	Entry string `json:"entry,omitempty"`
	*Change
	Time    string   `json:"time,omitempty"`
	Data    *string  `json:"data,omitempty"`
	Base64  bool     `json:"base64,omitempty"` // Data or Value is base64: the bytes are not UTF-8
	Changes []Change `json:"changes,omitempty"`
	Reset   *Reset   `json:"reset,omitempty"`
}

// Change is one operation of a map write.
type Change struct {
	Op         string  `json:"op"` // "set" or "del"
	Key        string  `json:"key"`
	KeyEscaped bool    `json:"key_escaped,omitempty"` // Key is percent-encoded (see Key)
	Value      *string `json:"value,omitempty"`
	Base64     bool    `json:"base64,omitempty"`
	Version    uint64  `json:"version"`
	OldVersion uint64  `json:"old_version"`
}

// Reset is the "reset" object of an event. To is null when the range has no known end
// (channel.Reset.Open).
type Reset struct {
	Reason   string  `json:"reason"`
	From     uint64  `json:"from"`
	To       *uint64 `json:"to"`
	OldEpoch string  `json:"old_epoch,omitempty"`
	NewEpoch string  `json:"new_epoch,omitempty"`
}

func at(p channel.Position) Event {
	return Event{Seq: p.Seq, Epoch: p.Epoch, Pos: p.String(), Entry: p.Entry}
}

// Start is the event that says where a stream starts: after p. It keeps to seq, epoch and pos
// (a client resuming from it is checked by the gateway's memory of what it sent).
func Start(p channel.Position) Event { p.Entry = ""; return at(p) }

// Message is a channel's event: a message, or a reset.
func Message(ev channel.Event) Event {
	if ev.Reset != nil {
		return ResetAt(ev.Position, ev.Reset)
	}
	e := at(ev.Position)
	e.Time = ev.Time.UTC().Format(TimeFormat)
	d, b64 := Value(ev.Data)
	e.Data, e.Base64 = &d, b64
	return e
}

// ResetAt is a reset, continuing after p.
func ResetAt(p channel.Position, r *channel.Reset) Event {
	e := at(p)
	e.Reset = &Reset{Reason: string(r.Reason), From: r.From, OldEpoch: r.OldEpoch, NewEpoch: r.NewEpoch}
	if !r.Open {
		to := r.To
		e.Reset.To = &to
	}
	return e
}

// Write is a map's write with all its operations, or a reset.
func Write(w replmap.Write[[]byte]) Event {
	if w.Reset != nil {
		return ResetAt(w.Position, w.Reset)
	}
	e := at(w.Position)
	e.Time = w.Time.UTC().Format(TimeFormat)
	e.Changes = make([]Change, len(w.Changes))
	for i, c := range w.Changes {
		e.Changes[i] = change(c)
	}
	return e
}

// ChangeLine is one operation of a write on its own (the CLI's watch lines), or a reset.
func ChangeLine(c replmap.Change[[]byte]) Event {
	if c.Reset != nil {
		return ResetAt(c.Position, c.Reset)
	}
	e := at(c.Position)
	ch := change(c)
	e.Change, e.Base64 = &ch, ch.Base64 // Event's own base64 field is the one JSON shows
	return e
}

func change(c replmap.Change[[]byte]) Change {
	ch := Change{Op: "set", Version: c.Version, OldVersion: c.OldVersion}
	ch.Key, ch.KeyEscaped = Key(c.Key)
	if c.Deleted {
		ch.Op = "del"
	} else {
		v, b64 := Value(c.Raw)
		ch.Value, ch.Base64 = &v, b64
	}
	return ch
}

// Value returns b as a JSON string: as is when it is UTF-8, else base64-encoded with isBase64
// set.
func Value(b []byte) (s string, isBase64 bool) {
	if utf8.Valid(b) {
		return string(b), false
	}
	return base64.StdEncoding.EncodeToString(b), true
}

// Key returns key as JSON carries it: itself when it is UTF-8 (escaped false), else
// percent-encoded (escaped true): every byte but the unreserved characters A-Z a-z 0-9 - . _ ~
// as %XX. The escaped form goes into a URL as it is, in a path (/keys/KEY) or a query
// (?after=KEY), and names the same bytes; a JSON string could not.
func Key(key string) (s string, escaped bool) {
	if utf8.ValidString(key) {
		return key, false
	}
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String(), true
}

// ParseTime reads a time written with TimeFormat.
func ParseTime(s string) (time.Time, error) { return time.Parse(TimeFormat, s) }
