package channel

import (
	"fmt"
	"log/slog"
	"time"
)

// Defaults for the zero fields of Config.
const (
	DefaultPrefix            = "redisync"
	DefaultMaxLen            = 1_000_000
	DefaultMaxMessageBytes   = 1 << 20
	DefaultMaxBatchMessages  = 1000
	DefaultMaxBatchBytes     = 4 << 20
	DefaultMaxInflight       = 1
	DefaultIdempotencyWindow = 5 * time.Minute
	DefaultIdleCheck         = time.Second
	DefaultFetchCount        = 500
	DefaultBufferSize        = 1024
	DefaultMaxEnvelopeBytes  = 8 << 20
	DefaultRewindMemory      = 1024
	DefaultReplicaTimeout    = time.Second
)

// Config configures a Client. A zero field takes the default named in its comment.
type Config struct {
	// Prefix starts every Redis key and pub/sub channel name. Default DefaultPrefix.
	Prefix string
	// MaxLen is the retention of each log by length: at least this many of the newest messages
	// are kept (Redis trims whole nodes, so a few more may stay). Negative means no length
	// limit. Default DefaultMaxLen.
	MaxLen int64
	// MaxAge is the retention of each log by age: older messages are dropped as new ones are
	// published. Zero means no age limit.
	MaxAge time.Duration
	// MaxMessageBytes bounds one message's data. Default DefaultMaxMessageBytes.
	MaxMessageBytes int
	// MaxBatchMessages bounds the messages appended by one script call, both for PublishBatch
	// and for the group commit of concurrent Publish calls. Default DefaultMaxBatchMessages.
	MaxBatchMessages int
	// MaxBatchBytes bounds the data appended by one script call. Default DefaultMaxBatchBytes.
	MaxBatchBytes int
	// MaxInflight bounds the script calls in flight per channel; concurrent publishes beyond it
	// wait and are then committed together. Default DefaultMaxInflight.
	MaxInflight int
	// IdempotencyWindow is how long Redis remembers a publish call so that a retry of it is not
	// appended twice; a publish is not retried past it (ErrUnknownOutcome).
	// Default DefaultIdempotencyWindow.
	IdempotencyWindow time.Duration
	// IdleCheck is how long a subscription waits without live messages before it reads the
	// channel's head to detect a lost tail or a silent connection. Default DefaultIdleCheck.
	IdleCheck time.Duration
	// FetchCount is the number of log entries (each the messages of one publish call) read per
	// round trip when catching up; a read also stops at MaxEnvelopeBytes. Default DefaultFetchCount.
	FetchCount int
	// BufferSize is the number of live pub/sub envelopes queued per subscription. When the
	// handler falls behind and the queue is full, envelopes are dropped (and counted) and the
	// subscription catches up from the log instead. Default DefaultBufferSize.
	BufferSize int
	// MaxEnvelopeBytes bounds a pub/sub envelope; a larger one is junk. Default DefaultMaxEnvelopeBytes.
	MaxEnvelopeBytes int
	// MinReplicas makes every publish (and map write) wait until at least this many replicas
	// have it (Redis WAIT) before it returns; when they do not within ReplicaTimeout, the call
	// returns its position with an error matching ErrNotReplicated. It narrows what a failover
	// can lose; it does not make Redis synchronous (see the README). 0: do not wait.
	MinReplicas int
	// ReplicaTimeout bounds the wait of MinReplicas. Default DefaultReplicaTimeout.
	ReplicaTimeout time.Duration
	// RewindMemory is the number of log entries (publish calls) a subscription remembers having
	// delivered, to find where the log parted from them after a failover that lost
	// acknowledged writes: its rewound reset is exact within that many entries, and covers
	// everything delivered in the epoch beyond. Default DefaultRewindMemory.
	RewindMemory int
	// Sharded publishes with SPUBLISH and subscribes with SSUBSCRIBE (Redis Cluster sharded
	// pub/sub) instead of PUBLISH and SUBSCRIBE.
	Sharded bool
	// Logger receives warnings (junk on a channel, reconnects, resets). Default slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.MaxLen == 0 {
		c.MaxLen = DefaultMaxLen
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.MaxBatchMessages == 0 {
		c.MaxBatchMessages = DefaultMaxBatchMessages
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if c.MaxInflight == 0 {
		c.MaxInflight = DefaultMaxInflight
	}
	if c.IdempotencyWindow == 0 {
		c.IdempotencyWindow = DefaultIdempotencyWindow
	}
	if c.IdleCheck == 0 {
		c.IdleCheck = DefaultIdleCheck
	}
	if c.FetchCount == 0 {
		c.FetchCount = DefaultFetchCount
	}
	if c.BufferSize == 0 {
		c.BufferSize = DefaultBufferSize
	}
	if c.MaxEnvelopeBytes == 0 {
		c.MaxEnvelopeBytes = DefaultMaxEnvelopeBytes
	}
	if c.ReplicaTimeout == 0 {
		c.ReplicaTimeout = DefaultReplicaTimeout
	}
	if c.RewindMemory == 0 {
		c.RewindMemory = DefaultRewindMemory
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// validate reports the first field that cannot work, after defaults are applied.
func (c Config) validate() error {
	switch {
	case c.MaxAge < 0:
		return fmt.Errorf("channel: MaxAge %v is negative", c.MaxAge)
	case c.MaxAge > 0 && c.MaxAge < time.Millisecond:
		return fmt.Errorf("channel: MaxAge %v is below one millisecond", c.MaxAge)
	case c.MaxMessageBytes < 0:
		return fmt.Errorf("channel: MaxMessageBytes %d is negative", c.MaxMessageBytes)
	case c.MaxBatchMessages < 1:
		return fmt.Errorf("channel: MaxBatchMessages %d is below 1", c.MaxBatchMessages)
	case c.MaxBatchBytes < c.MaxMessageBytes:
		return fmt.Errorf("channel: MaxBatchBytes %d is below MaxMessageBytes %d", c.MaxBatchBytes, c.MaxMessageBytes)
	case c.MaxInflight < 1:
		return fmt.Errorf("channel: MaxInflight %d is below 1", c.MaxInflight)
	case c.IdempotencyWindow < time.Second:
		return fmt.Errorf("channel: IdempotencyWindow %v is below one second", c.IdempotencyWindow)
	case c.IdleCheck < time.Millisecond:
		return fmt.Errorf("channel: IdleCheck %v is below one millisecond", c.IdleCheck)
	case c.FetchCount < 1:
		return fmt.Errorf("channel: FetchCount %d is below 1", c.FetchCount)
	case c.BufferSize < 1:
		return fmt.Errorf("channel: BufferSize %d is below 1", c.BufferSize)
	case c.MinReplicas < 0:
		return fmt.Errorf("channel: MinReplicas %d is negative", c.MinReplicas)
	case c.ReplicaTimeout < time.Millisecond:
		return fmt.Errorf("channel: ReplicaTimeout %v is below one millisecond", c.ReplicaTimeout)
	case c.RewindMemory < 1:
		return fmt.Errorf("channel: RewindMemory %d is below 1", c.RewindMemory)
	case c.MaxEnvelopeBytes < c.MaxBatchBytes:
		return fmt.Errorf("channel: MaxEnvelopeBytes %d is below MaxBatchBytes %d", c.MaxEnvelopeBytes, c.MaxBatchBytes)
	}
	return nil
}
