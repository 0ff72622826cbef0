package channel

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redisync/redisync/internal/wire"
)

// redisError names the operation and the Redis address in err.
func (c *Client) redisError(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("channel: %s at %s: %w", op, c.addr(), err)
}

func (c *Client) addr() string { return wire.Addr(c.rc) }

// fetch reads the epoch, the head and up to count log entries holding seqs from from on. A
// non-empty kind is checked: a name of another kind is a *KindError.
func (c *Client) fetch(ctx context.Context, k keys, kind Kind, from uint64, count int) (wire.Fetched, error) {
	vs, err := wire.Fetch.Exec(ctx, c.rc, []string{k.Meta, k.Log},
		[]string{strconv.FormatUint(from, 10), strconv.Itoa(count), strconv.Itoa(c.cfg.MaxEnvelopeBytes), string(kind)}).ToArray()
	if err != nil {
		return wire.Fetched{}, wire.AsKindError(err, k.Name, kind)
	}
	return wire.ParseFetch(vs)
}
