package channel

import (
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/redisync/redisync/internal/redistest"
)

// Idle subscriptions cost one command per Client per IdleCheck, however many there are.
func TestIdleChecksCostOneCommandPerClient(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	const idle = 100 * time.Millisecond
	c, _ := newTestClient(t, srv.URL(), Config{IdleCheck: idle})
	publishN(t, c, "c0", 1)
	for i := range 100 {
		name := "c" + strconv.Itoa(i%10)
		subscribe(t, c, name, FromNow())
	}
	time.Sleep(3 * idle) // let every subscription settle into idleness
	before := scriptCalls(t, srv)
	const window = 2 * time.Second
	time.Sleep(window)
	calls := scriptCalls(t, srv) - before
	// One read per IdleCheck (20 in the window), with slack for timing; per subscription it
	// would be 2,000.
	if limit := int(window/idle) + 5; calls > limit || calls < 5 {
		t.Fatalf("%d script calls in %v with 100 idle subscriptions and IdleCheck %v, want about %d", calls, window, idle, window/idle)
	}
}

// A lost tail is still found by the shared idle check, for each of several channels.
func TestSharedIdleCheckFindsLostTails(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	pub, _ := newTestClient(t, srv.URL(), Config{Sharded: true}) // its pub/sub copies reach no SUBSCRIBE subscriber
	sub, _ := newTestClient(t, srv.URL(), Config{Prefix: pub.cfg.Prefix, IdleCheck: 50 * time.Millisecond})
	var recs []*recorder
	for _, n := range []string{"a", "b", "c"} {
		r, _ := subscribe(t, sub, n, FromNow())
		recs = append(recs, r)
	}
	for _, n := range []string{"a", "b", "c"} {
		publishN(t, pub, n, 3)
	}
	for _, r := range recs {
		checkSequence(t, r.waitMsgs(t, 3, 5*time.Second), 1, 3)
	}
}

var evalCalls = regexp.MustCompile(`cmdstat_eval(?:sha)?(?:_ro)?:calls=(\d+)`)

// scriptCalls is the number of script calls Redis has run.
func scriptCalls(t *testing.T, srv *redistest.Server) int {
	t.Helper()
	s, err := srv.Do("INFO", "commandstats")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range evalCalls.FindAllStringSubmatch(s, -1) {
		v, _ := strconv.Atoi(m[1])
		n += v
	}
	return n
}
