package channel

import (
	"fmt"
	"time"
)

// Position is a point in a channel's history: the message Seq of the log identified by Epoch.
//
// The seq alone is not enough to resume: when Redis loses a channel's log (a restart without
// persistence, FLUSHALL, a failover to an empty replica) numbering starts again at 1 under a new
// epoch, and the same seq then names a different message. A subscription that resumes from a
// Position whose epoch is no longer current is told so with a reset event.
type Position struct {
	Epoch string
	Seq   uint64
}

// String formats p as "epoch:seq".
func (p Position) String() string { return fmt.Sprintf("%s:%d", p.Epoch, p.Seq) }

// From says where a subscription starts. Build one with FromStart, FromNow or After.
type From struct {
	pos Position
	now bool
}

// FromStart starts a subscription at the oldest message still in the log.
func FromStart() From { return From{} }

// FromNow starts a subscription after the newest message at the time it subscribes.
func FromNow() From { return From{now: true} }

// After starts a subscription after p: the first message delivered is p.Seq+1. An empty
// p.Epoch accepts whatever epoch the channel has.
func After(p Position) From { return From{pos: p} }

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
)

// Reset describes messages a subscription cannot deliver.
type Reset struct {
	Reason ResetReason
	// From and To bound the seqs concerned, inclusive. For ResetTrimmed they are the messages
	// lost; for ResetRewound the messages delivered that the log no longer holds; for
	// ResetEpochChanged From is the first seq not delivered and To is 0 (unknown).
	From, To uint64
	// OldEpoch and NewEpoch differ for ResetEpochChanged; NewEpoch is empty when the channel has
	// no history yet.
	OldEpoch, NewEpoch string
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

// maxNameLen bounds a channel name.
const maxNameLen = 256

// keys are the Redis names of one channel. All share one hash tag so that one script can use
// them together on Redis Cluster.
type keys struct {
	meta, log, idem, pubsub string
}

func (c *Client) keysFor(name string) (keys, error) {
	if err := checkName(name); err != nil {
		return keys{}, err
	}
	base := c.cfg.Prefix + ":{" + name + "}:"
	return keys{
		meta:   base + "meta",
		log:    base + "log",
		idem:   base + "idem:" + c.producer,
		pubsub: base + "pub",
	}, nil
}

func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrInvalidName)
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrInvalidName, len(name), maxNameLen)
	}
	for _, r := range name {
		if r == '{' || r == '}' || r < ' ' || r == 0x7f {
			return fmt.Errorf("%w: %q holds %q", ErrInvalidName, name, r)
		}
	}
	return nil
}
