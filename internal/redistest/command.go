package redistest

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"
)

// CommandTimeout bounds each Do call: dialing, writing and reading the reply.
const CommandTimeout = 10 * time.Second

// pollTimeout bounds each command of a wait loop, which tries again.
const pollTimeout = time.Second

// ErrNil is returned by Do when Redis replies with a nil (a missing key).
var ErrNil = errors.New("redistest: nil reply")

// Do runs one command on a fresh short-lived connection and returns the
// reply formatted as a string: simple and bulk strings as they are, integers
// in decimal, arrays as "[a b c]" with nested arrays nested and nil elements
// as "(nil)". A nil reply returns ErrNil; a Redis error reply returns an
// error carrying its message. Do may be called from any goroutine.
func (s *Server) Do(args ...string) (string, error) {
	return s.do(CommandTimeout, args...)
}

// ClientKill runs CLIENT KILL TYPE typ (normal, pubsub, master or replica)
// and returns the number of connections Redis closed. The connection that
// sends the command is never among them. It calls t.Fatalf on failure.
func (s *Server) ClientKill(typ string) int {
	s.tb.Helper()
	reply, err := s.Do("CLIENT", "KILL", "TYPE", typ)
	if err != nil {
		s.tb.Fatalf("redistest: CLIENT KILL TYPE %s on %s: %v", typ, s.addr, err)
	}
	n, err := strconv.Atoi(reply)
	if err != nil {
		s.tb.Fatalf("redistest: CLIENT KILL TYPE %s on %s: unexpected reply %q", typ, s.addr, reply)
	}
	return n
}

// Client returns a rueidis client of the server with client-side caching
// disabled; it is closed by t.Cleanup, before the server is killed.
func (s *Server) Client(t testing.TB) rueidis.Client {
	t.Helper()
	c, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:       []string{s.addr},
		Username:          s.user,
		Password:          s.opts.Password,
		TLSConfig:         s.tls,
		DisableCache:      true,
		ForceSingleClient: true,
	})
	if err != nil {
		t.Fatalf("redistest: rueidis client of %s: %v", s.addr, err)
	}
	t.Cleanup(c.Close)
	return c
}

// Info runs INFO section and returns its fields, "role" → "master" and so
// on; it calls t.Fatalf on failure.
func (s *Server) Info(section string) map[string]string {
	s.tb.Helper()
	m, err := s.info(section)
	if err != nil {
		s.tb.Fatalf("redistest: INFO %s on %s: %v", section, s.addr, err)
	}
	return m
}

// info runs INFO section with a short timeout and returns its fields.
func (s *Server) info(section string) (map[string]string, error) {
	v, err := s.doValue(pollTimeout, "INFO", section)
	if err != nil {
		return nil, err
	}
	text, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("redistest: INFO %s: unexpected reply %s", section, format(v))
	}
	m := make(map[string]string)
	for _, line := range strings.Split(text, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") {
			m[k] = v
		}
	}
	return m, nil
}

// pairs turns a flat array reply [k1 v1 k2 v2 …] into a map; other values
// give an empty map.
func pairs(v any) map[string]string {
	a, _ := v.([]any)
	m := make(map[string]string, len(a)/2)
	for i := 0; i+1 < len(a); i += 2 {
		k, _ := a[i].(string)
		val, _ := a[i+1].(string)
		m[k] = val
	}
	return m
}

// WaitReplicas waits until each of replicas has applied everything the
// server had written when WaitReplicas was called (the replication offset
// of INFO replication). WAIT cannot do this through Do, which sends each
// command on a new connection that has written nothing. It calls t.Fatalf
// after FailoverWait.
func (s *Server) WaitReplicas(replicas ...*Server) {
	s.tb.Helper()
	info := s.Info("replication")
	want, err := strconv.ParseInt(info["master_repl_offset"], 10, 64)
	if err != nil {
		s.tb.Fatalf("redistest: INFO replication of %s: master_repl_offset %q", s.addr, info["master_repl_offset"])
	}
	for _, r := range replicas {
		waitFor(s.tb, FailoverWait, "replica "+r.addr+" applies the writes of "+s.addr, func() (bool, string) {
			info, err := r.info("replication")
			if err != nil {
				return false, err.Error()
			}
			got, _ := strconv.ParseInt(info["master_repl_offset"], 10, 64)
			return got >= want, fmt.Sprintf("%s at offset %d, want %d", r.addr, got, want)
		})
	}
}
