package channel

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// Retention is how much of a channel's log Redis keeps. It is a property of the channel, stored
// in Redis with it: set when the channel is created (from the creating Client's Config.MaxLen
// and Config.MaxAge), changed only by SetRetention, and applied by every publish whoever makes
// it. A channel created before retention was stored adopts the settings of the first
// publisher that finds none.
type Retention struct {
	// MaxLen keeps at least the newest MaxLen messages (Redis trims whole entries, so somewhat
	// more may stay); 0 means no length limit.
	MaxLen int64
	// MaxAge drops messages older than MaxAge as new ones are published, with millisecond
	// precision; 0 means no age limit.
	MaxAge time.Duration
}

// String formats r as "max-len N, max-age D" with "none" for no limit.
func (r Retention) String() string {
	l, a := "none", "none"
	if r.MaxLen > 0 {
		l = strconv.FormatInt(r.MaxLen, 10)
	}
	if r.MaxAge > 0 {
		a = r.MaxAge.String()
	}
	return "max-len " + l + ", max-age " + a
}

func (r Retention) validate() error {
	switch {
	case r.MaxLen < 0:
		return fmt.Errorf("channel: retention MaxLen %d is negative (0 means no limit)", r.MaxLen)
	case r.MaxAge < 0:
		return fmt.Errorf("channel: retention MaxAge %v is negative (0 means no limit)", r.MaxAge)
	case r.MaxAge > 0 && r.MaxAge < time.Millisecond:
		return fmt.Errorf("channel: retention MaxAge %v is below one millisecond", r.MaxAge)
	}
	return nil
}

// created is the retention this Client gives the channels it creates.
func (c *Client) created() Retention {
	return Retention{MaxLen: max(c.cfg.MaxLen, 0), MaxAge: c.cfg.MaxAge}
}

// Retention returns the retention stored with channel name. ok is false when the channel has
// none stored yet (it has never been published to, or was created before retention was
// stored): its first publish then stores the publisher's Config.MaxLen and Config.MaxAge.
func (c *Client) Retention(ctx context.Context, name string) (r Retention, ok bool, err error) {
	k, err := c.keysFor(name)
	if err != nil {
		return Retention{}, false, err
	}
	vs, err := c.rc.Do(ctx, c.rc.B().Hmget().Key(k.Meta).Field("maxlen", "maxage").Build()).ToArray()
	if err != nil {
		return Retention{}, false, c.redisError(fmt.Sprintf("read the retention of %q", name), err)
	}
	if len(vs) != 2 {
		return Retention{}, false, fmt.Errorf("channel: HMGET returned %d values, want 2", len(vs))
	}
	var n [2]int64
	for i, v := range vs {
		if v.IsNil() {
			return Retention{}, false, nil
		}
		s, err := v.ToString()
		if err == nil {
			n[i], err = strconv.ParseInt(s, 10, 64)
		}
		if err != nil || n[i] < 0 {
			return Retention{}, false, fmt.Errorf("channel: the retention stored with %q is malformed: %q", name, s)
		}
	}
	return Retention{MaxLen: n[0], MaxAge: time.Duration(n[1]) * time.Millisecond}, true, nil
}

// SetRetention stores r as the retention of channel name (or of the change log of a map of
// that name): every later publish trims the log by it.
func (c *Client) SetRetention(ctx context.Context, name string, r Retention) error {
	if err := r.validate(); err != nil {
		return err
	}
	k, err := c.keysFor(name)
	if err != nil {
		return err
	}
	err = c.rc.Do(ctx, c.rc.B().Hset().Key(k.Meta).FieldValue().
		FieldValue("maxlen", strconv.FormatInt(r.MaxLen, 10)).
		FieldValue("maxage", strconv.FormatInt(r.MaxAge.Milliseconds(), 10)).Build()).Error()
	if err != nil {
		return c.redisError(fmt.Sprintf("set the retention of %q", name), err)
	}
	return nil
}
