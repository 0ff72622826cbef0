package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/replmap"
)

// sseBuffer is the number of events a stream's producer may be ahead of the client. Beyond
// it the producer waits; its subscription's queue then overflows and it catches up from the
// log once the client reads again, so a slow client costs bounded memory.
const sseBuffer = 64

// sseRetry is the reconnection delay the streams ask browsers to use, in milliseconds.
const sseRetry = 1000

// timeFormat is how event times are written, as by the CLI's --json output.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// sseEvent is one event of a stream.
type sseEvent struct {
	id   uint64
	typ  string // "" for a plain message, "reset" for a reset
	data []byte // one line of JSON
}

// parseStart says where a stream starts. The Last-Event-ID header (sent by a reconnecting
// EventSource) wins over ?from=; both name the seq after which to start. ?from=now (the
// default) starts after the head; ?epoch=E makes a resume detect that Redis lost the history
// E meanwhile (a reset). It returns the position to start after, or now.
func parseStart(r *http.Request) (pos channel.Position, now bool, err error) {
	q := r.URL.Query()
	pos.Epoch = q.Get("epoch")
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		pos.Seq, err = strconv.ParseUint(id, 10, 64)
		if err != nil {
			return pos, false, fmt.Errorf("Last-Event-ID %q: want a seq (a whole number)", id)
		}
		return pos, false, nil
	}
	from := q.Get("from")
	if from == "" || from == "now" {
		return pos, true, nil
	}
	pos.Seq, err = strconv.ParseUint(from, 10, 64)
	if err != nil {
		return pos, false, fmt.Errorf(`from %q: want "now" or a seq to start after (0: everything the log holds)`, from)
	}
	return pos, false, nil
}

// watchMap streams the changes of a map: one event per write, id = the write's seq, data =
// {"seq","epoch","time","changes":[…]} with every operation of the write.
func (n *Node) watchMap(w http.ResponseWriter, r *http.Request) {
	h, ok := n.mapFor(w, r)
	if !ok {
		return
	}
	n.stream(w, r, h.name, func(ev channel.Event) (sseEvent, bool) {
		if ev.Reset != nil {
			return resetEvent(ev), true
		}
		changes, err := h.m.Changes(ev)
		if err != nil {
			return sseEvent{}, false // not a change record: Watch skips those too
		}
		return writeEvent(ev, changes), true
	})
}

// channelEvents streams the messages of a relayed channel: one event per message, id = its
// seq, data = {"seq","epoch","time","data"} (plus "base64":true when data is not UTF-8).
func (n *Node) channelEvents(w http.ResponseWriter, r *http.Request) {
	c, ok := n.channelFor(w, r)
	if !ok {
		return
	}
	n.stream(w, r, c.name, func(ev channel.Event) (sseEvent, bool) {
		if ev.Reset != nil {
			return resetEvent(ev), true
		}
		return messageEvent(ev), true
	})
}

// stream answers an SSE stream of the channel name (a map's or a relayed one), converting
// each event with conv (which may skip one). It ends when the client leaves, when the node
// drains, or when the subscription fails.
func (n *Node) stream(w http.ResponseWriter, r *http.Request, name string, conv func(channel.Event) (sseEvent, bool)) {
	start, now, err := parseStart(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !n.startStream() {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "the node is shutting down")
		return
	}
	defer n.streamWG.Done()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(n.streams, cancel)()

	if now {
		// Resolve "now" here so that the first bytes carry the position: a client that is cut
		// off before any event resumes from it, not from a later "now".
		hctx, hcancel := context.WithTimeout(ctx, n.cfg.WriteTimeout)
		start, err = n.cl.Head(hctx, name)
		hcancel()
		if err != nil {
			n.writeFailure(w, r, err, "read channel "+name)
			return
		}
	}

	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	// The connection may serve other requests after the stream: take its deadline off.
	defer rc.SetWriteDeadline(time.Time{})
	out := &streamWriter{w: w, rc: rc, timeout: n.cfg.StreamTimeout}
	// An event without data sets the client's last event ID without dispatching anything.
	fmt.Fprintf(&out.buf, "retry: %d\nid: %d\n\n", sseRetry, start.Seq)
	if out.flush() != nil {
		return
	}
	n.met.streams.Inc()
	defer n.met.streams.Dec()

	events := make(chan sseEvent, sseBuffer)
	done := make(chan error, 1)
	go func() {
		var err error
		defer func() {
			done <- err
			close(events)
		}()
		for ev, e := range n.cl.Events(ctx, name, channel.After(start)) {
			if e != nil {
				err = e
				return
			}
			sev, ok := conv(ev)
			if !ok {
				continue
			}
			select {
			case events <- sev:
			case <-ctx.Done():
				err = ctx.Err()
				return
			}
		}
	}()
	defer func() {
		cancel()
		for range events { // let the producer end
		}
	}()

	keepAlive := time.NewTicker(n.cfg.KeepAlive)
	defer keepAlive.Stop()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				if err := <-done; err != nil && ctx.Err() == nil && !errors.Is(err, channel.ErrClosed) {
					n.cfg.Logger.Warn("redisync: SSE stream ended", "channel", name, "err", err)
					fmt.Fprintf(&out.buf, ": stream ended: %s\n\n", oneLine(err.Error()))
					out.flush()
				}
				return
			}
			out.event(ev)
			// Write what else is ready before flushing: one flush per burst.
			for more := true; more && out.buf.Len() < 64<<10; {
				select {
				case ev, ok := <-events:
					if !ok {
						more = false
						break
					}
					out.event(ev)
				default:
					more = false
				}
			}
			if out.flush() != nil {
				return
			}
			n.met.sseEvents.Add(float64(out.sent))
			out.sent = 0
			keepAlive.Reset(n.cfg.KeepAlive)
		case <-keepAlive.C:
			out.buf.WriteString(": keepalive\n\n")
			if out.flush() != nil {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// streamWriter buffers SSE text and writes it with a deadline.
type streamWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	buf     bytes.Buffer
	sent    int // events buffered since the last count
}

func (s *streamWriter) event(ev sseEvent) {
	fmt.Fprintf(&s.buf, "id: %d\n", ev.id)
	if ev.typ != "" {
		fmt.Fprintf(&s.buf, "event: %s\n", ev.typ)
	}
	s.buf.WriteString("data: ")
	s.buf.Write(ev.data)
	s.buf.WriteString("\n\n")
	s.sent++
}

// flush writes the buffer to the client and flushes it; an error means the client is gone
// or too slow.
func (s *streamWriter) flush() error {
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.timeout)) // unsupported by some test writers
	_, err := s.w.Write(s.buf.Bytes())
	s.buf.Reset()
	if err == nil {
		err = s.rc.Flush()
	}
	return err
}

// wireChange is an operation of a write event.
type wireChange struct {
	Op         string  `json:"op"` // "set" or "del"
	Key        string  `json:"key"`
	Value      *string `json:"value,omitempty"`
	Base64     bool    `json:"base64,omitempty"`
	Version    uint64  `json:"version"`
	OldVersion uint64  `json:"old_version"`
}

// wireWrite is the data of a map's write event.
type wireWrite struct {
	Seq     uint64       `json:"seq"`
	Epoch   string       `json:"epoch"`
	Time    string       `json:"time"`
	Changes []wireChange `json:"changes"`
}

// wireMessage is the data of a channel's message event.
type wireMessage struct {
	Seq    uint64 `json:"seq"`
	Epoch  string `json:"epoch"`
	Time   string `json:"time"`
	Data   string `json:"data"`
	Base64 bool   `json:"base64,omitempty"`
}

// wireReset is the data of a reset event.
type wireReset struct {
	Seq   uint64 `json:"seq"`
	Epoch string `json:"epoch"`
	Reset struct {
		Reason   string `json:"reason"`
		From     uint64 `json:"from"`
		To       uint64 `json:"to"`
		OldEpoch string `json:"old_epoch,omitempty"`
		NewEpoch string `json:"new_epoch,omitempty"`
	} `json:"reset"`
}

func writeEvent(ev channel.Event, changes []replmap.Change[[]byte]) sseEvent {
	ww := wireWrite{Seq: ev.Seq, Epoch: ev.Epoch, Time: ev.Time.UTC().Format(timeFormat), Changes: make([]wireChange, len(changes))}
	for i, c := range changes {
		wc := wireChange{Op: "set", Key: c.Key, Version: c.Version, OldVersion: c.OldVersion}
		if c.Deleted {
			wc.Op = "del"
		} else {
			v, b64 := jsonValue(c.Raw)
			wc.Value, wc.Base64 = &v, b64
		}
		ww.Changes[i] = wc
	}
	b, _ := json.Marshal(ww)
	return sseEvent{id: ev.Seq, data: b}
}

func messageEvent(ev channel.Event) sseEvent {
	d, b64 := jsonValue(ev.Data)
	b, _ := json.Marshal(wireMessage{Seq: ev.Seq, Epoch: ev.Epoch, Time: ev.Time.UTC().Format(timeFormat), Data: d, Base64: b64})
	return sseEvent{id: ev.Seq, data: b}
}

func resetEvent(ev channel.Event) sseEvent {
	wr := wireReset{Seq: ev.Seq, Epoch: ev.Epoch}
	r := ev.Reset
	wr.Reset.Reason, wr.Reset.From, wr.Reset.To = string(r.Reason), r.From, r.To
	wr.Reset.OldEpoch, wr.Reset.NewEpoch = r.OldEpoch, r.NewEpoch
	b, _ := json.Marshal(wr)
	return sseEvent{id: ev.Seq, typ: "reset", data: b}
}

// oneLine keeps s on one line of an SSE comment.
func oneLine(s string) string {
	return string(bytes.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, []byte(s)))
}
