package channel

import (
	"context"
	"errors"
	"fmt"

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
	return wire.ReadLog(ctx, c.rc, k, kind, from, count, c.cfg.MaxEnvelopeBytes)
}
