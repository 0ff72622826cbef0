package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"strconv"
	"time"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/internal/eventjson"
	"github.com/redisync/redisync/replmap"
)

// sseBuffer is the number of events a stream's producer may be ahead of the client. Beyond
// it the producer waits; its subscription's queue then overflows and it catches up from the
// log once the client reads again, so a slow client costs bounded memory.
const sseBuffer = 64

// sseRetry is the reconnection delay the streams ask browsers to use, in milliseconds.
const sseRetry = 1000

// sseEvent is one event of a stream.
type sseEvent struct {
	id   string // the event's position, Position.String()
	pos  channel.Position
	typ  string // "" for a plain message, "reset" for a reset
	data []byte // one line of JSON
}

// MaxSeq is the largest seq a stream can start after: the largest a channel's log can hold
// (channel.MaxSeq). A larger start position answers 400.
const MaxSeq = channel.MaxSeq

// positionForms says what a stream's start position may be, for error messages.
const positionForms = "EPOCH:SEQ, EPOCH:SEQ:ENTRY or SEQ (the id of an event, to start after it; a bare SEQ is a seq of the current epoch, 0 starts at the oldest message the log holds)"

// parseStart says where a stream starts. The Last-Event-ID header (sent by a reconnecting
// EventSource) wins over ?from=. Both take a position as the streams write it in their ids,
// "EPOCH:SEQ", or a bare "SEQ" (a seq of the current epoch); ?from= also takes "now" (the
// default), which starts after the head. ?epoch=E gives the epoch of a bare seq, the older way
// of naming it. It returns the position to start after, or now.
func parseStart(r *http.Request) (pos channel.Position, now bool, err error) {
	q := r.URL.Query()
	text, param := r.Header.Get("Last-Event-ID"), "Last-Event-ID"
	if text == "" {
		text, param = q.Get("from"), "?from="
		if text == "" || text == "now" {
			return pos, true, nil
		}
	}
	pos, err = channel.ParsePosition(text)
	if err != nil {
		forms := positionForms
		if param == "?from=" {
			forms = `"now", ` + forms
		}
		return pos, false, fmt.Errorf("%s %q: want %s", param, text, forms)
	}
	if pos.Seq > MaxSeq {
		return pos, false, fmt.Errorf("%s %q: seq %d is beyond the largest seq a log can hold (%d, 2^53-1)", param, text, pos.Seq, uint64(MaxSeq))
	}
	if e := q.Get("epoch"); e != "" {
		if _, err := channel.ParsePosition(e + ":0"); err != nil {
			return pos, false, fmt.Errorf("?epoch= %q is not an epoch (the part of an event's id before the colon)", e)
		}
		if pos.Epoch != "" && pos.Epoch != e {
			return pos, false, fmt.Errorf("%s %q names epoch %s but ?epoch= is %s: send one of them", param, text, pos.Epoch, e)
		}
		pos.Epoch = e
	}
	return pos, false, nil
}

// watchMap streams the changes of a map: one event per write, id = the write's position,
// data = {"seq","epoch","pos","time","changes":[…]} with every operation of the write.
func (n *Node) watchMap(w http.ResponseWriter, r *http.Request) {
	h, ok := n.mapFor(w, r)
	if !ok {
		return
	}
	n.stream(w, r, h.name, channel.KindMap, func(ctx context.Context, from channel.From) iter.Seq2[sseEvent, error] {
		return convert(h.m.Writes(ctx, from), func(w replmap.Write[[]byte]) sseEvent {
			if w.Reset != nil {
				return resetEvent(w.Position, w.Reset)
			}
			return writeEvent(w)
		})
	})
}

// channelEvents streams the messages of a relayed channel: one event per message, id = its
// position, data = {"seq","epoch","pos","time","data"} (plus "base64":true when data is not
// UTF-8).
func (n *Node) channelEvents(w http.ResponseWriter, r *http.Request) {
	c, ok := n.channelFor(w, r)
	if !ok {
		return
	}
	n.stream(w, r, c.name, channel.KindChannel, func(ctx context.Context, from channel.From) iter.Seq2[sseEvent, error] {
		return convert(n.cl.Events(ctx, c.name, from), func(ev channel.Event) sseEvent {
			if ev.Reset != nil {
				return resetEvent(ev.Position, ev.Reset)
			}
			return messageEvent(ev)
		})
	})
}

// convert maps the items of a stream to SSE events.
func convert[T any](items iter.Seq2[T, error], f func(T) sseEvent) iter.Seq2[sseEvent, error] {
	return func(yield func(sseEvent, error) bool) {
		for it, err := range items {
			if err != nil {
				yield(sseEvent{}, err)
				return
			}
			if !yield(f(it), nil) {
				return
			}
		}
	}
}

// stream answers an SSE stream of the name (a map's writes or a relayed channel's messages, as
// kind says), whose events source yields from a start position. A name that holds the other
// kind answers 409. The stream ends when the client leaves, when the node drains, or when the
// subscription fails (a name that takes the other kind after the check ends it so).
func (n *Node) stream(w http.ResponseWriter, r *http.Request, name string, kind channel.Kind,
	source func(ctx context.Context, from channel.From) iter.Seq2[sseEvent, error]) {
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

	what := "read " + string(kind) + " " + strconv.Quote(name)
	// Check the kind before the answer's status: the subscription would find out only once
	// the stream has begun. Pin the start here too (channel.Client.Pin), so that the first
	// frame carries the position: a client cut off before any event resumes from it, not
	// from a later "now", nor from a bare seq read against a history Redis replaced meanwhile.
	check := func(timeout time.Duration) (channel.Position, error) {
		hctx, hcancel := context.WithTimeout(ctx, timeout)
		defer hcancel()
		is, err := n.cl.Kind(hctx, name)
		switch {
		case err != nil:
			return start, err
		case is != "" && is != kind:
			return start, &channel.KindError{Name: name, Kind: is, Want: kind}
		}
		from := channel.After(start)
		if now {
			from = channel.FromNow()
		}
		p, err := n.cl.Pin(hctx, name, from.Of(kind))
		if err != nil {
			return start, err
		}
		return p, nil
	}
	pos, err := check(min(n.cfg.WriteTimeout, sseFirstCheck))
	switch {
	case err != nil && ctx.Err() != nil:
		if r.Context().Err() == nil { // the node drains
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, "the node is shutting down")
		}
		return
	case err != nil && !unreachable(err):
		n.writeFailure(w, r, err, what)
		return
	}

	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return // the headers a GET would have; no stream
	}
	rc := http.NewResponseController(w)
	// The connection may serve other requests after the stream: take its deadline off.
	defer rc.SetWriteDeadline(time.Time{})
	out := &streamWriter{w: w, rc: rc, timeout: n.cfg.StreamTimeout}
	fmt.Fprintf(&out.buf, "retry: %d\n", sseRetry)
	if err != nil {
		// Redis is unreachable: the stream waits for it rather than answering an error, on
		// which EventSource would give up for good.
		if pos, err = n.waitForRedis(ctx, out, err, check); err != nil {
			if ctx.Err() == nil {
				fmt.Fprintf(&out.buf, ": stream ended: %s\n\n", oneLine(err.Error()))
				out.flush()
			}
			return
		}
	}
	start = n.sent.complete(kind, name, pos)
	n.sent.note(kind, name, start)
	out.ready(start)
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
		for sev, e := range source(ctx, channel.After(start)) {
			if e != nil {
				err = e
				return
			}
			n.sent.note(kind, name, sev.pos)
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
					n.cfg.Logger.Warn("redisync: SSE stream ended", string(kind), name, "err", err)
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

// sseFirstCheck bounds the first try of a stream's checks (the kind, the head): past it the
// stream begins and waits for Redis (waitForRedis).
const sseFirstCheck = 2 * time.Second

// waitForRedis retries check until it succeeds, fails for another reason than an unreachable
// Redis, or ctx ends, with a comment on the stream that says so (cause is the first failure)
// and keep-alive comments meanwhile. It returns check's position.
func (n *Node) waitForRedis(ctx context.Context, out *streamWriter, cause error, check func(time.Duration) (channel.Position, error)) (channel.Position, error) {
	fmt.Fprintf(&out.buf, ": waiting for Redis: %s\n\n", oneLine(cause.Error()))
	if err := out.flush(); err != nil {
		return channel.Position{}, err
	}
	keepAlive := time.NewTicker(n.cfg.KeepAlive)
	defer keepAlive.Stop()
	for attempt := 0; ; attempt++ {
		delay := min(100*time.Millisecond<<min(attempt, 4), time.Second)
		select {
		case <-ctx.Done():
			return channel.Position{}, ctx.Err()
		case <-keepAlive.C:
			out.buf.WriteString(": keepalive\n\n")
			if err := out.flush(); err != nil {
				return channel.Position{}, err
			}
			continue
		case <-time.After(delay):
		}
		pos, err := check(n.cfg.WriteTimeout)
		if err == nil || !unreachable(err) || ctx.Err() != nil {
			return pos, err
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

// ready writes the stream's first event: a comment, then an event "ready" whose id is the
// position the stream starts after and whose data says the same ({"seq","epoch","pos"}).
// It carries data because clients ignore an event without (the npm eventsource package
// does, and would not resume from the id); it has a type of its own, so that onmessage
// handlers do not see it.
func (s *streamWriter) ready(start channel.Position) {
	b, _ := json.Marshal(eventjson.Start(start))
	s.buf.WriteString(": ready\n")
	fmt.Fprintf(&s.buf, "event: ready\nid: %s\ndata: %s\n\n", start, b)
}

func (s *streamWriter) event(ev sseEvent) {
	fmt.Fprintf(&s.buf, "id: %s\n", ev.id)
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

func writeEvent(w replmap.Write[[]byte]) sseEvent {
	b, _ := json.Marshal(eventjson.Write(w))
	return sseEvent{id: w.Position.String(), pos: w.Position, data: b}
}

func messageEvent(ev channel.Event) sseEvent {
	b, _ := json.Marshal(eventjson.Message(ev))
	return sseEvent{id: ev.Position.String(), pos: ev.Position, data: b}
}

func resetEvent(at channel.Position, r *channel.Reset) sseEvent {
	b, _ := json.Marshal(eventjson.ResetAt(at, r))
	return sseEvent{id: at.String(), pos: at, typ: "reset", data: b}
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
