package node

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/rueidis"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/internal/eventjson"
	"github.com/redisync/redisync/replmap"
)

// mapFor returns the hosted map named in the path, or answers 404.
func (n *Node) mapFor(w http.ResponseWriter, r *http.Request) (*hosted, bool) {
	name := r.PathValue("map")
	h, ok := n.maps[name]
	if !ok {
		writeErrorf(w, http.StatusNotFound, "map %q is not served by this node (it serves %s)", name, quoteList(n.names, "no maps"))
		return nil, false
	}
	return h, true
}

// keyFor returns the key named in the path, or answers 400 (empty) or 414 (too long).
func (n *Node) keyFor(w http.ResponseWriter, r *http.Request) (string, bool) {
	key := r.PathValue("key")
	switch {
	case key == "":
		writeError(w, http.StatusBadRequest, "empty key: the path is /v1/maps/{map}/keys/{key}")
		return "", false
	case len(key) > n.cfg.MaxKeyBytes:
		writeErrorf(w, http.StatusRequestURITooLong, "key of %d bytes, the limit is %d", len(key), n.cfg.MaxKeyBytes)
		return "", false
	}
	return key, true
}

// ready answers 503 unless h's replica is ready, or 409 when it cannot load because the
// name holds a channel.
func ready(w http.ResponseWriter, h *hosted) bool {
	if h.m.Ready() {
		return true
	}
	if err := loadFault(h.m); err != nil {
		writeError(w, http.StatusConflict, err.Error())
		return false
	}
	w.Header().Set("Retry-After", "1")
	writeErrorf(w, http.StatusServiceUnavailable, "the replica of map %q is %s; retry shortly", h.name, notReady(h))
	return false
}

// notReady says why h's replica is not ready: "loading" its first snapshot, or "reloading"
// a new one (after a reset, or after it was found different from Redis).
func notReady(h *hosted) string {
	if h.m.Stats().Snapshots > 0 {
		return "reloading"
	}
	return "loading"
}

// loadFault returns why m's replica cannot load, without waiting: an error matching
// channel.ErrWrongKind when the name holds a channel, else nil.
func loadFault(m *replmap.Map[[]byte]) error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // WaitReady then reports the fault at once, or the context's end
	if err := m.WaitReady(ctx); errors.Is(err, channel.ErrWrongKind) {
		return err
	}
	return nil
}

// etag formats a version as a strong entity tag.
func etag(version uint64) string { return `"` + strconv.FormatUint(version, 10) + `"` }

func (n *Node) getKey(w http.ResponseWriter, r *http.Request) {
	h, ok := n.mapFor(w, r)
	if !ok {
		return
	}
	key, ok := n.keyFor(w, r)
	if !ok || !ready(w, h) {
		return
	}
	v, ver, err := h.m.Get(key)
	switch {
	case errors.Is(err, replmap.ErrNotFound):
		writeErrorf(w, http.StatusNotFound, "key %q not found in map %q", key, h.name)
		return
	case errors.Is(err, replmap.ErrNotReady):
		ready(w, h)
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	tag := etag(ver)
	w.Header().Set("ETag", tag)
	w.Header().Set("Cache-Control", "no-cache")
	if inm := strings.Join(r.Header.Values("If-None-Match"), ","); inm != "" && (strings.TrimSpace(inm) == "*" || strings.Contains(inm, tag)) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(v)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(v)
	}
}

// precondition is what a write's conditional headers ask for.
type precondition struct {
	guard     bool   // the write is a compare-and-set
	ifVersion uint64 // the version the key must have (0: absent)
	exists    bool   // If-Match: * — the key must exist, at any version
}

// parsePrecondition reads If-Match and If-None-Match of a write:
//
//	If-Match: "N"      the key must be at version N ("0": absent, like --if-version 0)
//	If-Match: *        the key must exist
//	If-None-Match: *   the key must be absent (create only)
//
// Each may come once: two header lines are refused, as a list in one line is.
func parsePrecondition(r *http.Request) (precondition, error) {
	for _, h := range []string{"If-Match", "If-None-Match"} {
		if len(r.Header.Values(h)) > 1 {
			return precondition{}, fmt.Errorf("%s came in %d header lines: send it once, with one condition", h, len(r.Header.Values(h)))
		}
	}
	im, inm := r.Header.Get("If-Match"), r.Header.Get("If-None-Match")
	switch {
	case im != "" && inm != "":
		return precondition{}, errors.New("send If-Match or If-None-Match, not both")
	case inm != "":
		if strings.TrimSpace(inm) != "*" {
			return precondition{}, errors.New(`If-None-Match on a write must be "*" (create only if absent)`)
		}
		return precondition{guard: true, ifVersion: 0}, nil
	case im == "":
		return precondition{}, nil
	}
	im = strings.TrimSpace(im)
	if im == "*" {
		return precondition{exists: true}, nil
	}
	if strings.HasPrefix(im, "W/") {
		return precondition{}, errors.New(`If-Match must be a strong ETag such as "42", not a weak one`)
	}
	if strings.Contains(im, ",") {
		return precondition{}, errors.New(`If-Match must be one ETag such as "42", not a list`)
	}
	unq, err := strconv.Unquote(im)
	if err != nil || !strings.HasPrefix(im, `"`) {
		return precondition{}, errors.New(`If-Match must be a quoted version such as "42" (the ETag of a GET)`)
	}
	v, err := strconv.ParseUint(unq, 10, 64)
	if err != nil {
		return precondition{}, errors.New(`If-Match must be a quoted version such as "42" (the ETag of a GET)`)
	}
	return precondition{guard: true, ifVersion: v}, nil
}

// conflictBody is the body of a 412. Key is as eventjson.Key writes it.
type conflictBody struct {
	Error      string  `json:"error"`
	Map        string  `json:"map"`
	Key        string  `json:"key"`
	KeyEscaped bool    `json:"key_escaped,omitempty"`
	Expected   *uint64 `json:"expected"` // null for If-Match: * (any version)
	Actual     uint64  `json:"actual"`   // 0: absent
}

// writeResult is the body of a successful write. Key is as eventjson.Key writes it.
type writeResult struct {
	Map        string `json:"map"`
	Key        string `json:"key"`
	KeyEscaped bool   `json:"key_escaped,omitempty"`
	Version    uint64 `json:"version"`
	Deleted    bool   `json:"deleted,omitempty"`
}

func (n *Node) putKey(w http.ResponseWriter, r *http.Request) {
	n.writeKey(w, r, false)
}

func (n *Node) deleteKey(w http.ResponseWriter, r *http.Request) {
	n.writeKey(w, r, true)
}

func (n *Node) writeKey(w http.ResponseWriter, r *http.Request, del bool) {
	h, ok := n.mapFor(w, r)
	if !ok {
		return
	}
	key, ok := n.keyFor(w, r)
	if !ok || !ready(w, h) {
		return
	}
	pre, err := parsePrecondition(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var value []byte
	if !del {
		if value, ok = n.readBody(w, r, n.cfg.MaxBodyBytes); !ok {
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), n.cfg.WriteTimeout)
	defer cancel()
	op := replmap.Op[[]byte]{Key: key, Value: value, Delete: del, Guard: pre.guard, IfVersion: pre.ifVersion, MustExist: pre.exists}
	seq, err := h.m.Write(ctx, op)
	var ce *replmap.ConflictError
	switch {
	case err == nil:
		h.writes.ok.Add(1)
		w.Header().Set("ETag", etag(seq))
		res := writeResult{Map: h.name, Version: seq, Deleted: del}
		res.Key, res.KeyEscaped = eventjson.Key(key)
		writeJSON(w, http.StatusOK, res)
	case errors.As(err, &ce):
		h.writes.conflict.Add(1)
		body := conflictBody{Error: ce.Error(), Map: h.name, Actual: ce.Actual}
		body.Key, body.KeyEscaped = eventjson.Key(ce.Key)
		if !pre.exists {
			body.Expected = &ce.Expected
		}
		if ce.Actual > 0 {
			w.Header().Set("ETag", etag(ce.Actual))
		}
		writeJSON(w, http.StatusPreconditionFailed, body)
	case del && errors.Is(err, replmap.ErrNotFound):
		// Nothing was written: there was nothing to delete.
		h.writes.conflict.Add(1)
		writeErrorf(w, http.StatusNotFound, "key %q not found in map %q: nothing to delete", key, h.name)
	default:
		h.writes.failed.Add(1)
		n.writeFailure(w, r, err, "write to map "+strconv.Quote(h.name))
	}
}

// readBody reads a request body of at most limit bytes, answering 413 beyond, and 408 when
// it has not arrived within Config.BodyTimeout (withBodyTimeout). Once it is read, the read
// deadline is lifted.
func (n *Node) readBody(w http.ResponseWriter, r *http.Request, limit int) ([]byte, bool) {
	if r.ContentLength > int64(limit) {
		writeErrorf(w, http.StatusRequestEntityTooLarge, "body of %d bytes, the limit is %d", r.ContentLength, limit)
		return nil, false
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(limit)))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		writeErrorf(w, http.StatusRequestEntityTooLarge, "body over the limit of %d bytes", limit)
		return nil, false
	case errors.Is(err, os.ErrDeadlineExceeded):
		w.Header().Set("Connection", "close")
		writeErrorf(w, http.StatusRequestTimeout, "the body did not arrive within %v (--body-timeout, Config.BodyTimeout); nothing was written",
			n.cfg.BodyTimeout)
		return nil, false
	case err != nil:
		writeErrorf(w, http.StatusBadRequest, "reading the body: %v", err)
		return nil, false
	}
	// The body is in: the deadline must not cut the wait for Redis (the server's background
	// read would end the request's context at it).
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	return b, true
}

// writeFailure answers a write that failed for another reason than its precondition.
func (n *Node) writeFailure(w http.ResponseWriter, r *http.Request, err error, what string) {
	switch {
	case errors.Is(err, replmap.ErrWriteLost):
		w.Header().Set("Retry-After", "1")
		writeErrorf(w, http.StatusServiceUnavailable, "%s: Redis acknowledged it, then lost it (a failover, or Redis lost its data); nothing of it remains, write again: %v",
			what, err)
	case errors.Is(err, channel.ErrWrongKind):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, replmap.ErrInvalid), errors.Is(err, channel.ErrTooLarge), errors.Is(err, channel.ErrInvalidName):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, replmap.ErrClosed), errors.Is(err, channel.ErrClosed):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "the node is shutting down")
	case r.Context().Err() != nil:
		writeError(w, http.StatusServiceUnavailable, "the request was cancelled; the write may or may not have been applied")
	case unreachable(err) && !errors.Is(err, context.DeadlineExceeded):
		w.Header().Set("Retry-After", "1")
		outcome := "; it may or may not have been applied"
		if strings.HasPrefix(what, "read") {
			outcome = ""
		}
		writeErrorf(w, http.StatusServiceUnavailable, "%s: Redis unreachable%s: %v", what, outcome, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, channel.ErrUnknownOutcome):
		w.Header().Set("Retry-After", "1")
		writeErrorf(w, http.StatusServiceUnavailable, "%s: not confirmed within %v (Redis unreachable?); it may or may not have been applied: %v",
			what, n.cfg.WriteTimeout, err)
	default:
		writeErrorf(w, http.StatusBadGateway, "%s: Redis refused it: %v", what, err)
	}
}

// unreachable reports whether err is a failure to reach Redis (a connection refused, cut or
// timed out, Redis still loading its data, a cluster without a primary), which passes with
// time, rather than an answer that would be the same again (an error reply of Redis, a name
// of the other kind, an invalid name, a closed client).
func unreachable(err error) bool {
	var re *rueidis.RedisError
	var ne net.Error
	switch {
	case err == nil:
		return false
	case errors.As(err, &re):
		return re.IsLoading() || re.IsTryAgain() || re.IsClusterDown() ||
			strings.HasPrefix(re.Error(), "MASTERDOWN") || strings.HasPrefix(re.Error(), "BUSY ")
	case errors.As(err, &ne), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, context.DeadlineExceeded):
		return true
	}
	return false
}

// keyItem is a key of a list answer. Key is as eventjson.Key writes it.
type keyItem struct {
	Key        string  `json:"key"`
	KeyEscaped bool    `json:"key_escaped,omitempty"`
	Version    uint64  `json:"version"`
	Value      *string `json:"value,omitempty"`
	Base64     bool    `json:"base64,omitempty"`
}

// keyPage is the answer of GET /v1/maps/{map}.
type keyPage struct {
	Map   string    `json:"map"`
	Epoch string    `json:"epoch"`
	Seq   uint64    `json:"seq"`   // the replica's position when the page was read
	Total int       `json:"total"` // keys in the map
	Keys  []keyItem `json:"keys"`
	// Next is the page's last key, to pass as ?after= for the next page; absent on the last
	// page. As eventjson.Key writes it: when NextEscaped, it is already percent-encoded.
	Next        string `json:"next,omitempty"`
	NextEscaped bool   `json:"next_escaped,omitempty"`
}

// listKeys answers a page of the map's keys in byte order: ?after=KEY (exclusive),
// ?prefix=P, ?limit=N (default DefaultListLimit, at most MaxListLimit), ?values=true to
// include the values.
func (n *Node) listKeys(w http.ResponseWriter, r *http.Request) {
	h, ok := n.mapFor(w, r)
	if !ok || !ready(w, h) {
		return
	}
	q := r.URL.Query()
	limit := DefaultListLimit
	if s := q.Get("limit"); s != "" {
		l, err := strconv.Atoi(s)
		if err != nil || l < 1 || l > MaxListLimit {
			writeErrorf(w, http.StatusBadRequest, "limit %q: want a whole number from 1 to %d", s, MaxListLimit)
			return
		}
		limit = l
	}
	withValues := false
	if s := q.Get("values"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			writeErrorf(w, http.StatusBadRequest, "values %q: want true or false", s)
			return
		}
		withValues = b
	}
	after, prefix := q.Get("after"), q.Get("prefix")

	pos := h.m.Position()
	// The limit+1 smallest matching keys, in a max-heap: O(keys · log limit).
	top := &entryHeap{}
	for k, e := range h.m.All() {
		if k <= after || !strings.HasPrefix(k, prefix) {
			continue
		}
		if top.Len() <= limit {
			heap.Push(top, listed{k, e})
		} else if k < (*top)[0].key {
			(*top)[0] = listed{k, e}
			heap.Fix(top, 0)
		}
	}
	page := keyPage{Map: h.name, Epoch: pos.Epoch, Seq: pos.Seq, Total: h.m.Len(), Keys: make([]keyItem, top.Len())}
	for i := top.Len() - 1; i >= 0; i-- {
		it := heap.Pop(top).(listed)
		item := keyItem{Version: it.e.Version}
		item.Key, item.KeyEscaped = eventjson.Key(it.key)
		if withValues {
			v, b64 := eventjson.Value(it.e.Value)
			item.Value, item.Base64 = &v, b64
		}
		page.Keys[i] = item
	}
	if len(page.Keys) > limit {
		page.Keys = page.Keys[:limit]
		page.Next, page.NextEscaped = page.Keys[limit-1].Key, page.Keys[limit-1].KeyEscaped
	}
	writeJSON(w, http.StatusOK, page)
}

type listed struct {
	key string
	e   replmap.Entry[[]byte]
}

// entryHeap is a max-heap of keys.
type entryHeap []listed

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return h[i].key > h[j].key }
func (h entryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *entryHeap) Push(x any)        { *h = append(*h, x.(listed)) }
func (h *entryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// mapInfo is an item of GET /v1/maps.
type mapInfo struct {
	Name   string `json:"name"`
	Ready  bool   `json:"ready"`
	Epoch  string `json:"epoch"`
	Seq    uint64 `json:"seq"`
	Keys   int    `json:"keys"`
	Digest string `json:"digest"`
}

func (n *Node) listMaps(w http.ResponseWriter, _ *http.Request) {
	out := struct {
		Maps []mapInfo `json:"maps"`
	}{Maps: []mapInfo{}}
	for _, name := range n.names {
		m := n.maps[name].m
		d, pos := m.Digest()
		out.Maps = append(out.Maps, mapInfo{Name: name, Ready: m.Ready(), Epoch: pos.Epoch, Seq: pos.Seq, Keys: m.Len(), Digest: d.String()})
	}
	writeJSON(w, http.StatusOK, out)
}

// quoteList formats names as "a", "b", or none when there are none.
func quoteList(names []string, none string) string {
	if len(names) == 0 {
		return none
	}
	q := make([]string, len(names))
	for i, s := range names {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}
