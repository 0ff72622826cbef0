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

// transient reports whether err may pass if the same call is repeated: the connection failed,
// or Redis answered with a state that ends on its own (loading, busy, failing over).
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, rueidis.ErrClosing) {
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

// fetched is what fetch.lua read: the channel's epoch and head, and log entries in seq order.
type fetched struct {
	epoch   string
	head    uint64
	entries []logEntry
}

type logEntry struct {
	seq  uint64
	ms   int64
	data string
}

// fetch reads the epoch, the head and up to count entries from seq from.
func (c *Client) fetch(ctx context.Context, k keys, from uint64, count int) (fetched, error) {
	vs, err := fetchScript.Exec(ctx, c.rc, []string{k.meta, k.log},
		[]string{strconv.FormatUint(from, 10), strconv.Itoa(count)}).ToArray()
	if err != nil {
		return fetched{}, err
	}
	if len(vs) < 2 || (len(vs)-2)%3 != 0 {
		return fetched{}, fmt.Errorf("fetch script returned %d values", len(vs))
	}
	strs := make([]string, len(vs))
	for i, v := range vs {
		if strs[i], err = v.ToString(); err != nil {
			return fetched{}, fmt.Errorf("fetch script value %d: %w", i, err)
		}
	}
	f := fetched{epoch: strs[0]}
	if f.head, err = strconv.ParseUint(strs[1], 10, 64); err != nil {
		return fetched{}, fmt.Errorf("channel head %q is not a seq", strs[1])
	}
	f.entries = make([]logEntry, 0, (len(strs)-2)/3)
	for i := 2; i < len(strs); i += 3 {
		seq, err := strconv.ParseUint(strs[i], 10, 64)
		if err != nil {
			return fetched{}, fmt.Errorf("log entry id %q is not a seq", strs[i])
		}
		ms, _ := strconv.ParseInt(strs[i+1], 10, 64) // an entry without a time keeps 0
		f.entries = append(f.entries, logEntry{seq: seq, ms: ms, data: strs[i+2]})
	}
	return f, nil
}
