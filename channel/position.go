package channel

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redisync/redisync/internal/wire"
)

// Position is a point in a channel's history: the message Seq of the log identified by Epoch,
// and Entry, the id of the log entry that holds that message, when known.
//
// The seq alone is not enough to resume: when Redis loses a channel's log (a restart without
// persistence, FLUSHALL, a failover to an empty replica) numbering starts again at 1 under a new
// epoch, and the same seq then names a different message. A subscription that resumes from a
// Position whose epoch is no longer current is told so with a reset event.
//
// The epoch is not enough either: a failover that loses acknowledged writes keeps the epoch and
// hands the lost seqs out again to other messages. Entry tells them apart. A subscription that
// resumes from a Position with an Entry checks that the log still holds that entry at Seq, and
// if it does not, announces the messages up to Seq as rewound instead of skipping the new ones
// (see ResetRewound). Events, Subscription.Start, Client.Head and Publish fill it in; a Position
// built by hand, or read from its String form, leaves it empty, and is then trusted. Token writes
// the position with its entry.
type Position struct {
	Epoch string
	Seq   uint64
	Entry string
}

// String formats p as "EPOCH:SEQ", or as the bare "SEQ" when Epoch is empty: the form
// positions take wherever users see them (event ids, the CLI). It leaves Entry out; Token
// keeps it. ParsePosition reads both back.
func (p Position) String() string {
	if p.Epoch == "" {
		return strconv.FormatUint(p.Seq, 10)
	}
	return p.Epoch + ":" + strconv.FormatUint(p.Seq, 10)
}

// Token formats p as "EPOCH:SEQ:ENTRY", or as String does when Entry or Epoch is empty: the
// form to store when a resume must be checked against the log (see After).
func (p Position) Token() string {
	if p.Entry == "" || p.Epoch == "" {
		return p.String()
	}
	return p.String() + ":" + p.Entry
}

// MaxSeq is the largest seq a channel's log can hold: its scripts count in Lua numbers
// (doubles), exact up to 2^53. A subscription cannot start after a larger seq: Subscribe,
// Events and Pin refuse one with an error matching ErrInvalidPosition.
const MaxSeq = 1<<53 - 1

// checkStart refuses a start after a seq no log can reach.
func checkStart(from From) error {
	if !from.now && from.pos.Seq > MaxSeq {
		return fmt.Errorf("%w: seq %d is beyond the largest seq a log can hold (%d, 2^53-1)", ErrInvalidPosition, from.pos.Seq, uint64(MaxSeq))
	}
	return nil
}

// ParsePosition reads a position written by Position.String or Token: "EPOCH:SEQ",
// "EPOCH:SEQ:ENTRY", or a bare "SEQ" (no epoch: a subscription started after it follows whatever epoch the channel
// has, see After). Anything else is an error that matches ErrInvalidPosition.
func ParsePosition(s string) (Position, error) {
	epoch, rest, hasEpoch := strings.Cut(s, ":")
	if !hasEpoch {
		epoch, rest = "", s
	}
	seqText, entry, hasEntry := strings.Cut(rest, ":")
	seq, err := strconv.ParseUint(seqText, 10, 64)
	if err != nil || seqText == "" || seqText[0] == '+' {
		return Position{}, fmt.Errorf("%w: %q: want EPOCH:SEQ, EPOCH:SEQ:ENTRY or SEQ, with SEQ a whole number", ErrInvalidPosition, s)
	}
	if hasEpoch {
		if err := idText("epoch", epoch); err != nil {
			return Position{}, fmt.Errorf("%w: %q: %v", ErrInvalidPosition, s, err)
		}
	}
	if hasEntry {
		if err := idText("entry", entry); err != nil {
			return Position{}, fmt.Errorf("%w: %q: %v", ErrInvalidPosition, s, err)
		}
	}
	return Position{Epoch: epoch, Seq: seq, Entry: entry}, nil
}

// idText checks the epoch or entry part of a position: not empty, no spaces, controls or colons.
func idText(what, s string) error {
	if s == "" {
		return fmt.Errorf("the %s is empty", what)
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == ':' {
			return fmt.Errorf("the %s holds %q", what, r)
		}
	}
	return nil
}

// From says where a subscription starts. Build one with FromStart, FromNow or After.
type From struct {
	pos  Position // pos.Entry: the id of the log entry holding pos.Seq, when known
	now  bool
	kind Kind // KindChannel when empty
}

// FromStart starts a subscription at the oldest message still in the log.
func FromStart() From { return From{} }

// FromNow starts a subscription after the newest message at the time it subscribes.
func FromNow() From { return From{now: true} }

// After starts a subscription after p: the first message delivered is p.Seq+1.
//
// When p.Entry is set (every Position an event or Start gave carries it), the subscription
// checks that the log still holds that entry at p.Seq. If a failover lost it, the messages up
// to p.Seq that the caller may have delivered are gone too, and the log's seqs from where the
// histories part were given to other messages. Where they part cannot be known from p alone, so
// the subscription announces every seq from the oldest message of the log up to p.Seq as
// rewound (ResetRewound) and delivers the log from its oldest message.
//
// When p has an epoch but no Entry, nothing can be checked. If a subscription found within
// PartedWindow that this epoch's history parted at a seq D ≤ p.Seq (it leaves a mark in Redis
// when its user may write), the subscription announces D to p.Seq as rewound and delivers the
// log from D; otherwise it trusts p.
//
// When p.Epoch is empty, p.Seq is taken to be a seq of the channel's current epoch. If the
// channel's head is below it, no such message exists: the subscription delivers a reset
// (ResetRewound, from 1 to p.Seq) and then every message of the current history from seq 1,
// so that every seq is either delivered or inside a reset's range.
func After(p Position) From { return From{pos: p} }

// Start is the position a From stands for: p.Seq+1 is the first message a subscription
// started after it delivers. ok is false for FromNow, which names no position until the
// channel's head has been read.
func (f From) Start() (p Position, ok bool) { return f.pos, !f.now }

// ResetReason says why a subscription could not continue without a hole.
type ResetReason string

// The reasons for a reset.
const (
	// ResetTrimmed: the messages were dropped from the log by its retention before they could be
	// delivered.
	ResetTrimmed ResetReason = "trimmed"
	// ResetEpochChanged: Redis lost the channel's log; numbering starts again under a new epoch.
	ResetEpochChanged ResetReason = "epoch-changed"
	// ResetRewound: the log's head went below what was already delivered (a failover to a replica
	// that had not received the newest messages); those seqs may be reused by new messages.
	ResetRewound ResetReason = "rewound"
	// ResetReloaded: a replicated map's replica loaded a new snapshot (after another reset, or
	// when it was found different from Redis), replacing all it held: the range is open from
	// seq 1, and the position is the snapshot's. Only replmap's OnChange reports it.
	ResetReloaded ResetReason = "reloaded"
)

// Reset describes messages a subscription cannot deliver.
type Reset struct {
	Reason ResetReason
	// From and To bound the seqs concerned, inclusive, with From <= To, in OldEpoch. For
	// ResetTrimmed they are the messages lost; for ResetRewound the messages delivered that the
	// log no longer holds (or, after a start with no epoch above the head, every seq up to the
	// start). For ResetEpochChanged the upper bound is not known (the old log is gone): Open is
	// set, To is 0, and every message of OldEpoch from From on is lost.
	From, To uint64
	// Open says the range has no known upper bound: it is every seq from From on.
	Open bool
	// OldEpoch and NewEpoch differ for ResetEpochChanged; NewEpoch is empty when the channel has
	// no history yet.
	OldEpoch, NewEpoch string
}

// String describes r in one line, the same way everywhere: "messages 3 to 7" or
// "messages from 3 on", with the reason and the epochs.
func (r Reset) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: ", r.Reason)
	if r.Open {
		fmt.Fprintf(&b, "messages from %d on", r.From)
	} else if r.From == r.To {
		fmt.Fprintf(&b, "message %d", r.From)
	} else {
		fmt.Fprintf(&b, "messages %d to %d", r.From, r.To)
	}
	if r.OldEpoch != "" {
		fmt.Fprintf(&b, " of epoch %s", r.OldEpoch)
	}
	if r.Reason == ResetEpochChanged {
		if r.NewEpoch == "" {
			b.WriteString("; the channel has no history now")
		} else {
			fmt.Fprintf(&b, "; the new epoch is %s", r.NewEpoch)
		}
	}
	return b.String()
}

// Kind is what a name holds in Redis: a plain channel (KindChannel), or the change log of a
// replicated map (KindMap). A name has one kind for the whole of its history: a map cannot be
// published to as a channel, nor a channel subscribed to or written as a map.
type Kind = wire.Kind

// The kinds of names.
const (
	KindChannel = wire.KindChannel
	KindMap     = wire.KindMap
)

// KindError says that a name holds another kind than the call wants (its fields Name, Kind,
// Want). It matches ErrWrongKind.
type KindError = wire.KindError

// Of makes a subscription that follows the change log of a name of kind k. Subscriptions
// follow KindChannel by default; replicated maps use KindMap. A name of another kind ends the
// subscription with a *KindError.
func (f From) Of(k Kind) From { f.kind = k; return f }

func (f From) kindOr() Kind {
	if f.kind == "" {
		return KindChannel
	}
	return f.kind
}

// Event is one step of a subscription: a message, or a reset when Reset is not nil.
type Event struct {
	// Position of the message; for a reset, the position the subscription continues after, so
	// that storing the Position of every event is always a valid place to resume from.
	Position
	// Time is when Redis accepted the message (millisecond precision); zero for a reset.
	Time time.Time
	// Data is the message; the subscriber owns it.
	Data []byte
	// Reset is set for a reset event.
	Reset *Reset
}

// ValidateName returns an error matching ErrInvalidName unless name can name a channel or a
// map: 1 to 256 bytes of UTF-8 without braces or control characters.
func ValidateName(name string) error { return wire.CheckName(name) }

// keys are the Redis names of one channel.
type keys = wire.Keys

func (c *Client) keysFor(name string) (keys, error) { return wire.KeysFor(c.cfg.Prefix, name) }
