package wire

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

var (
	// ErrInvalidName is returned for a name that is empty, too long, not UTF-8, or holds a
	// brace or a control character.
	ErrInvalidName = errors.New("channel: invalid channel name")
	// ErrWrongKind is matched by a *KindError.
	ErrWrongKind = errors.New("redisync: name holds another kind")
	// ErrNotReplicated is returned, with the reply, by an append made with MinReplicas when
	// fewer replicas confirmed it in time. It was applied on the primary.
	ErrNotReplicated = errors.New("channel: applied on the primary, but not confirmed by enough replicas")
	// ErrUnknownOutcome is returned when an append could not be confirmed within the
	// idempotency window: it may or may not have been applied.
	ErrUnknownOutcome = errors.New("channel: publish outcome unknown")
)

// MaxNameLen bounds a channel or map name, in bytes.
const MaxNameLen = 256

// CheckName returns an error matching ErrInvalidName unless name can name a channel or a map.
func CheckName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrInvalidName)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrInvalidName, len(name), MaxNameLen)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: %q is not UTF-8", ErrInvalidName, name)
	}
	for _, r := range name {
		if r == '{' || r == '}' || unicode.IsControl(r) {
			return fmt.Errorf("%w: %q holds %q", ErrInvalidName, name, r)
		}
	}
	return nil
}

// Keys are the Redis names of one channel (and of the map built on it). All share the hash
// tag {Name}, so that one script can use them together on Redis Cluster.
type Keys struct {
	Name   string
	Meta   string // hash: epoch, seq, tip, kind, maxlen, maxage; a map's dx, dy, n
	Log    string // stream: one entry per append
	PubSub string // the pub/sub channel of the envelopes
	State  string // a map's hash: key -> "VERSION:VALUE"
	prefix string
}

// KeysFor returns the names of channel name under prefix, or an error matching
// ErrInvalidName.
func KeysFor(prefix, name string) (Keys, error) {
	if err := CheckName(name); err != nil {
		return Keys{}, err
	}
	base := prefix + ":{" + name + "}:"
	return Keys{Name: name, Meta: base + "meta", Log: base + "log", PubSub: base + "pub", State: base + "state", prefix: prefix}, nil
}

// Idem is the idempotency set of a producer's appends to this channel.
func (k Keys) Idem(producer string) string { return k.prefix + ":{" + k.Name + "}:idem:" + producer }

// Kind is what a name holds in Redis: a plain channel, or the change log of a replicated map.
// A name has one kind for the whole of its history.
type Kind string

// The kinds of names.
const (
	KindChannel Kind = "channel"
	KindMap     Kind = "map"
)

// KindError says that a name holds another kind than the call wants. It matches ErrWrongKind.
type KindError struct {
	Name string
	Kind Kind // what the name is
	Want Kind // what the call wanted
}

// Error says what the name is.
func (e *KindError) Error() string {
	return fmt.Sprintf("redisync: %q is a %s, not a %s", e.Name, e.Kind, e.Want)
}

// Is makes errors.Is(err, ErrWrongKind) true.
func (e *KindError) Is(target error) bool { return target == ErrWrongKind }
