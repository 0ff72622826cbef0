package wire

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

// Appender runs the scripts that append to channels (Publish, Write) with the protocol of
// PROTOCOL.md section 2: a fresh idempotency token per call with the producer's low-water mark,
// retries of transient failures with the same arguments within half the idempotency window, and
// with MinReplicas a WAIT for replicas. One Appender is one producer. It is safe for concurrent
// use; set its fields before the first Append.
type Appender struct {
	RC       rueidis.Client
	Prefix   string
	Producer string        // names this producer's idempotency sets
	Window   time.Duration // how long Redis remembers a call (IDEMTTL)
	// MaxLen and MaxAge are the retention stored with a channel this producer creates; 0: none.
	MaxLen int64
	MaxAge time.Duration
	// Sharded publishes with SPUBLISH.
	Sharded bool
	// MinReplicas, when positive, waits (WAIT) until that many replicas have each call, for at
	// most ReplicaTimeout.
	MinReplicas    int
	ReplicaTimeout time.Duration
	// Retries, when set, counts calls repeated after a transient failure.
	Retries *atomic.Uint64

	mu     sync.Mutex         // guards tokens
	tokens map[string]*tokens // per channel
}

// tokens is the idempotency bookkeeping of one channel.
type tokens struct {
	last      uint64               // last token issued
	unsettled map[uint64]time.Time // tokens that may still reach Redis: in flight (zero time), or in doubt until the time
}

// Append runs script (Publish or Write) on channel k with this producer's protocol: KEYS meta,
// log, idem, then more; ARGV pubchan, pubcmd, id, token, lowwater, idemttl, maxlen, maxage, then
// args. It returns the script's reply and the id it gave the log entry (PROTOCOL.md, "The
// envelope"; a retry answered from the idempotency record names the same entry). Errors: a *KindError; ErrNotReplicated (wrapped, with the
// reply); ErrUnknownOutcome (wrapped) when the call could not be confirmed in time; ctx's error;
// or Redis's, naming the channel and the address.
func (a *Appender) Append(ctx context.Context, script *Script, k Keys, more, args []string) (_ []rueidis.RedisMessage, entry string, _ error) {
	tk := a.tokensOf(k.Name)
	token, low := tk.issue(a)
	pubcmd := "PUBLISH"
	if a.Sharded {
		pubcmd = "SPUBLISH"
	}
	entry = RandomID()
	argv := make([]string, 0, 8+len(args))
	argv = append(argv,
		k.PubSub, pubcmd, entry,
		strconv.FormatUint(token, 10), strconv.FormatUint(low, 10),
		strconv.FormatInt(a.Window.Milliseconds(), 10),
		strconv.FormatInt(max(a.MaxLen, 0), 10),
		strconv.FormatInt(a.MaxAge.Milliseconds(), 10))
	argv = append(argv, args...)
	kv := append([]string{k.Meta, k.Log, k.Idem(a.Producer)}, more...)
	fail := func(err error) error {
		return fmt.Errorf("channel: append to %q at %s: %w", k.Name, Addr(a.RC), err)
	}

	start := time.Now()
	// inDoubt: an attempt failed without a reply. It may still reach Redis later, held up on
	// the connection it was sent on, even after a later attempt has succeeded.
	inDoubt := false
	defer func() { tk.settle(a, token, inDoubt) }()
	for attempt := 0; ; attempt++ {
		vs, err := a.exec(ctx, script, kv, argv)
		if errors.Is(err, ErrNotReplicated) {
			return vs, entry, fail(err)
		}
		var re *rueidis.RedisError
		if err != nil && !errors.As(err, &re) {
			inDoubt = true
		}
		if err == nil {
			return vs, entry, nil
		}
		if !Transient(ctx, err) {
			if kerr := AsKindError(err, k.Name, ""); kerr != err {
				return nil, "", kerr
			}
			if ctx.Err() != nil {
				return nil, "", ctx.Err()
			}
			return nil, "", fail(err)
		}
		if time.Since(start) > a.Window/2 {
			return nil, "", fail(fmt.Errorf("%w: %v", ErrUnknownOutcome, err))
		}
		if !SleepBackoff(ctx, attempt) {
			return nil, "", ctx.Err()
		}
		if a.Retries != nil {
			a.Retries.Add(1)
		}
	}
}

// exec runs script once. With MinReplicas it runs it on a connection of its own followed by
// WAIT, and reports ErrNotReplicated (with the reply) when fewer replicas confirmed it in time.
func (a *Appender) exec(ctx context.Context, script *Script, keys, argv []string) ([]rueidis.RedisMessage, error) {
	if a.MinReplicas == 0 {
		return script.Exec(ctx, a.RC, keys, argv).ToArray()
	}
	var vs []rueidis.RedisMessage
	var acked int64
	err := a.RC.Dedicated(func(dc rueidis.DedicatedClient) error {
		wait := func() rueidis.Completed {
			return dc.B().Wait().Numreplicas(int64(a.MinReplicas)).Timeout(a.ReplicaTimeout.Milliseconds()).Build()
		}
		rs := dc.DoMulti(ctx, script.command(dc.B(), true, keys, argv), wait())
		if noScript(rs[0]) {
			rs = dc.DoMulti(ctx, script.command(dc.B(), false, keys, argv), wait())
		}
		var err error
		if vs, err = rs[0].ToArray(); err != nil {
			return err
		}
		acked, err = rs[1].AsInt64()
		return err
	})
	if err != nil {
		return nil, err
	}
	if acked < int64(a.MinReplicas) {
		return vs, fmt.Errorf("%w: %d of %d replicas confirmed it within %v", ErrNotReplicated, acked, a.MinReplicas, a.ReplicaTimeout)
	}
	return vs, nil
}

func (a *Appender) tokensOf(name string) *tokens {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.tokens == nil {
		a.tokens = make(map[string]*tokens)
	}
	tk := a.tokens[name]
	if tk == nil {
		tk = &tokens{unsettled: make(map[uint64]time.Time)}
		a.tokens[name] = tk
	}
	return tk
}

// issue returns a new idempotency token and the low-water mark to send with it: the least
// token whose call may still reach Redis, so that Redis keeps remembering it.
func (tk *tokens) issue(a *Appender) (token, low uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	tk.last++
	token = tk.last
	tk.unsettled[token] = time.Time{}
	low = token
	now := time.Now()
	for t, until := range tk.unsettled {
		if !until.IsZero() && now.After(until) {
			delete(tk.unsettled, t)
			continue
		}
		low = min(low, t)
	}
	return token, low
}

// settle ends token's call. When an attempt of it may still be on its way to Redis (its
// connection failed or its caller gave up with no reply; whether a later attempt succeeded
// does not matter), the token stays unsettled for the idempotency window: a late attempt must
// still find it, not append a second time.
func (tk *tokens) settle(a *Appender, token uint64, inDoubt bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if inDoubt {
		tk.unsettled[token] = time.Now().Add(a.Window)
		return
	}
	delete(tk.unsettled, token)
}

// RandomID returns 16 random hex digits: producer ids, entry ids and epoch candidates. They
// need to be unique, not secret, so the runtime's fast generator is enough.
func RandomID() string { return fmt.Sprintf("%016x", rand.Uint64()) }

// Addr names the Redis servers rc talks to, for error messages.
func Addr(rc rueidis.Client) string {
	var addrs []string
	for a := range rc.Nodes() {
		addrs = append(addrs, a)
	}
	return strings.Join(addrs, ",")
}
