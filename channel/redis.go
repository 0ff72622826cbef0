package channel

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// transient reports whether err, returned by a call made with ctx, may pass if the call is
// repeated: the connection failed, or Redis answered with a state that ends on its own
// (loading, busy, failing over). A context error is transient unless it is ctx's own: the
// client also reports a dial or handshake that timed out as a deadline exceeded.
func transient(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil || errors.Is(err, rueidis.ErrClosing) {
		return false
	}
	var re *rueidis.RedisError
	if errors.As(err, &re) {
		msg := re.Error()
		for _, p := range []string{"LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN", "READONLY", "CLUSTERDOWN", "NOREPLICAS"} {
			if strings.HasPrefix(msg, p) {
				return true
			}
		}
		return false
	}
	return true
}

// sleepBackoff waits before retry number attempt (0-based): 5 ms doubling up to 1 s. It
// reports false when ctx ended first.
func sleepBackoff(ctx context.Context, attempt int) bool {
	d := 5 * time.Millisecond << min(attempt, 8)
	d = min(d, time.Second)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// redisError names the operation and the Redis address in err.
func (c *Client) redisError(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("channel: %s at %s: %w", op, c.addr(), err)
}

func (c *Client) addr() string {
	var addrs []string
	for a := range c.rc.Nodes() {
		addrs = append(addrs, a)
	}
	return strings.Join(addrs, ",")
}

// asKindError turns a script's "WRONGKIND <kind>" error into a *KindError for name; other
// errors are returned as they are.
func asKindError(err error, name string, want Kind) error {
	var re *rueidis.RedisError
	if !errors.As(err, &re) {
		return err
	}
	is, ok := strings.CutPrefix(re.Error(), "WRONGKIND ")
	if !ok {
		return err
	}
	// Redis may add the script's location after the message.
	is, _, _ = strings.Cut(is, " ")
	if want == "" { // an appending script: it wanted the kind the name is not
		want = KindMap
		if Kind(is) == KindMap {
			want = KindChannel
		}
	}
	return &KindError{Name: name, Kind: Kind(is), Want: want}
}

func parsePublishReply(vs []rueidis.RedisMessage) (Position, error) {
	if len(vs) != 3 {
		return Position{}, fmt.Errorf("publish script returned %d values, want 3", len(vs))
	}
	epoch, err := vs[0].ToString()
	if err != nil {
		return Position{}, err
	}
	s, err := vs[1].ToString()
	if err != nil {
		return Position{}, err
	}
	seq, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return Position{}, fmt.Errorf("publish script returned seq %q", s)
	}
	return Position{Epoch: epoch, Seq: seq}, nil
}

// fetched is what fetch.lua read: the channel's epoch and head, and the log entries (each the
// envelope of one publish call) that hold the seqs asked for, in seq order.
type fetched struct {
	epoch   string
	head    uint64
	tip     string // id of the newest entry, "" when unknown
	entries []*envelope
}

// fetch reads the epoch, the head and up to count log entries holding seqs from from on. A
// non-empty kind is checked: a name of another kind is a *KindError.
func (c *Client) fetch(ctx context.Context, k keys, kind Kind, from uint64, count int) (fetched, error) {
	vs, err := fetchScript.Exec(ctx, c.rc, []string{k.meta, k.log},
		[]string{strconv.FormatUint(from, 10), strconv.Itoa(count), strconv.Itoa(c.cfg.MaxEnvelopeBytes), string(kind)}).ToArray()
	if err != nil {
		return fetched{}, asKindError(err, k.name, kind)
	}
	if len(vs) < 3 {
		return fetched{}, fmt.Errorf("fetch script returned %d values, want at least 3", len(vs))
	}
	strs := make([]string, len(vs))
	for i, v := range vs {
		if strs[i], err = v.ToString(); err != nil {
			return fetched{}, fmt.Errorf("fetch script value %d: %w", i, err)
		}
	}
	f := fetched{epoch: strs[0], tip: chainID(strs[2])}
	if f.head, err = strconv.ParseUint(strs[1], 10, 64); err != nil {
		return fetched{}, fmt.Errorf("channel head %q is not a seq", strs[1])
	}
	f.entries = make([]*envelope, 0, len(strs)-3)
	for _, s := range strs[3:] {
		env, err := decodeEnvelope(s)
		if err != nil {
			return fetched{}, fmt.Errorf("log entry %.40q is not an envelope", s)
		}
		f.entries = append(f.entries, env)
	}
	return f, nil
}
