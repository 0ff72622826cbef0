package channel

import (
	"errors"

	"github.com/redisync/redisync/internal/wire"
)

var (
	// ErrClosed is returned by calls on a Client after Close, and ends its subscriptions.
	ErrClosed = errors.New("channel: client closed")
	// ErrInvalidName is returned for a channel name that is empty, too long or holds a brace.
	ErrInvalidName = wire.ErrInvalidName
	// ErrTooLarge is returned when a message or a batch exceeds the configured limits.
	ErrTooLarge = errors.New("channel: message too large")
	// ErrEmptyBatch is returned by PublishBatch for a batch without messages.
	ErrEmptyBatch = errors.New("channel: empty batch")
	// ErrInvalidPosition is returned by ParsePosition for text that is not a position.
	ErrInvalidPosition = errors.New("channel: invalid position")
	// ErrWrongKind is matched by a *KindError: the name holds a map where a channel was wanted,
	// or the reverse.
	ErrWrongKind = wire.ErrWrongKind
	// ErrNotReplicated is returned, with the position, by a publish or write made with
	// Config.MinReplicas when fewer replicas than that confirmed it within
	// Config.ReplicaTimeout. It was applied on the primary: a failover may lose it, or not.
	ErrNotReplicated = wire.ErrNotReplicated
	// ErrUnknownOutcome is returned when a publish could not be confirmed within the idempotency
	// window: it may or may not have been appended, and retrying it could append it twice.
	ErrUnknownOutcome = wire.ErrUnknownOutcome
)
