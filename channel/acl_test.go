package channel

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/redisync/redisync/internal/redistest"
)

// A user that may only read can subscribe (the log is read with EVALSHA_RO), and cannot
// publish; a user that may write the keys but not publish on the channel is refused before
// anything is written, with an error naming the command and the channel.
func TestACLReadOnlySubscriberAndDeniedPublish(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	for _, user := range [][]string{
		{"reader", "on", ">pw", "~*", "&*", "+@read", "+@connection", "+@pubsub", "-publish", "-spublish", "+evalsha_ro", "+eval_ro"},
		{"nopub", "on", ">pw", "~*", "resetchannels", "+@all"},
	} {
		if _, err := srv.Do(append([]string{"ACL", "SETUSER"}, user...)...); err != nil {
			t.Fatal(err)
		}
	}
	owner, _ := newTestClient(t, srv.URL(), Config{})
	reader, _ := newTestClient(t, "redis://reader:pw@"+srv.Addr(), Config{Prefix: owner.cfg.Prefix, IdleCheck: 50 * time.Millisecond})
	nopub, _ := newTestClient(t, "redis://nopub:pw@"+srv.Addr(), Config{Prefix: owner.cfg.Prefix})
	ctx := context.Background()

	rec, _ := subscribe(t, reader, "c", FromNow())
	publishN(t, owner, "c", 5)
	checkSequence(t, rec.waitMsgs(t, 5, 5*time.Second), 1, 5)

	head := func() Position {
		p, err := owner.Head(ctx, "c")
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	before := head()
	for _, c := range []*Client{reader, nopub} {
		_, err := c.Publish(ctx, "c", []byte("denied"))
		var re *rueidis.RedisError
		if !errors.As(err, &re) || !strings.HasPrefix(re.Error(), "NOPERM") {
			t.Fatalf("publish by a user who may not: %v, want NOPERM", err)
		}
		if c == nopub && !strings.Contains(err.Error(), "PUBLISH on "+owner.keysMust(t, "c").PubSub) {
			t.Fatalf("the error does not name the denied command and channel: %v", err)
		}
		if h := head(); h != before {
			t.Fatalf("a refused publish moved the head from %v to %v", before, h)
		}
		if n := xlen(t, srv, owner, "c"); n != 5 {
			t.Fatalf("a refused publish left %d log entries, want 5", n)
		}
	}
	publishN(t, owner, "c", 1)
	checkSequence(t, rec.waitMsgs(t, 6, 5*time.Second), 1, 6)
}
