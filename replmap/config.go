package replmap

import (
	"fmt"
	"log/slog"
	"time"
)

// Defaults for the zero fields of Config.
const (
	DefaultMaxKeyBytes   = 1 << 10
	DefaultMaxValueBytes = 1 << 20
	DefaultScanCount     = 5000
	DefaultVerifyEvery   = 30 * time.Second
)

// Config configures a Map. A zero field takes the default named in its comment.
type Config[V any] struct {
	// Codec turns values into bytes and back. Default JSON[V].
	Codec Codec[V]
	// MaxKeyBytes bounds a key. Default DefaultMaxKeyBytes.
	MaxKeyBytes int
	// MaxValueBytes bounds an encoded value. Default DefaultMaxValueBytes.
	MaxValueBytes int
	// MaxStaleness, when set, makes Get fail with ErrStale once the replica has not been able
	// to confirm for that long that it is current (Redis unreachable, say). Zero: Get keeps
	// serving the last known state; Staleness tells how old it may be.
	MaxStaleness time.Duration
	// NoWaitOnWrite makes writes return as soon as Redis has applied them, without waiting
	// for the local replica to apply them too. Default false: read-your-writes on this node.
	NoWaitOnWrite bool
	// OnChange, when set, is called after the replica applies each change, in seq order,
	// from the replica's goroutine: it must return quickly. After a re-snapshot it is called
	// once with a Change whose Reset is set.
	OnChange func(Change[V])
	// Progress, when set, is called while a snapshot loads with the keys loaded so far and
	// the map's size when the load began.
	Progress func(loaded, total int)
	// ScanCount is the number of keys asked for per HSCAN while loading a snapshot.
	// Default DefaultScanCount.
	ScanCount int
	// VerifyEvery is how often the replica checks itself against Redis (Verify) while it is
	// ready: a replica that differs from Redis at the same seq, for whatever reason, is marked
	// not ready and reloads within about this bound. Negative disables the check.
	// Default DefaultVerifyEvery.
	VerifyEvery time.Duration
	// Logger receives re-snapshots and undecodable values. Default slog.Default().
	Logger *slog.Logger
}

// codecDefaults fills the fields Config and CacheConfig share.
func codecDefaults[V any](codec *Codec[V], maxKey, maxVal *int, logger **slog.Logger) {
	if *codec == nil {
		*codec = JSON[V]{}
	}
	if *maxKey == 0 {
		*maxKey = DefaultMaxKeyBytes
	}
	if *maxVal == 0 {
		*maxVal = DefaultMaxValueBytes
	}
	if *logger == nil {
		*logger = slog.Default()
	}
}

// checkLimits validates the limits Config and CacheConfig share.
func checkLimits(maxKey, maxVal int) error {
	switch {
	case maxKey < 1:
		return fmt.Errorf("replmap: MaxKeyBytes %d is below 1", maxKey)
	case maxVal < 0:
		return fmt.Errorf("replmap: MaxValueBytes %d is negative", maxVal)
	}
	return nil
}

func (c Config[V]) withDefaults() Config[V] {
	codecDefaults(&c.Codec, &c.MaxKeyBytes, &c.MaxValueBytes, &c.Logger)
	if c.ScanCount == 0 {
		c.ScanCount = DefaultScanCount
	}
	if c.VerifyEvery == 0 {
		c.VerifyEvery = DefaultVerifyEvery
	}
	return c
}

func (c Config[V]) validate() error {
	if err := checkLimits(c.MaxKeyBytes, c.MaxValueBytes); err != nil {
		return err
	}
	switch {
	case c.MaxStaleness < 0:
		return fmt.Errorf("replmap: MaxStaleness %v is negative", c.MaxStaleness)
	case c.ScanCount < 1:
		return fmt.Errorf("replmap: ScanCount %d is below 1", c.ScanCount)
	}
	return nil
}

// CacheConfig configures a Cache (OpenCache). A zero field takes the default named in its
// comment.
type CacheConfig[V any] struct {
	// Codec turns values into bytes and back. Default JSON[V].
	Codec Codec[V]
	// MaxKeyBytes bounds a key written through the cache. Default DefaultMaxKeyBytes.
	MaxKeyBytes int
	// MaxValueBytes bounds an encoded value written through the cache. Default
	// DefaultMaxValueBytes.
	MaxValueBytes int
	// Size is the most keys the cache holds, absent ones included. Default DefaultCacheSize.
	Size int
	// Logger receives resets of the map's channel. Default slog.Default().
	Logger *slog.Logger
}

func (c CacheConfig[V]) withDefaults() CacheConfig[V] {
	codecDefaults(&c.Codec, &c.MaxKeyBytes, &c.MaxValueBytes, &c.Logger)
	if c.Size == 0 {
		c.Size = DefaultCacheSize
	}
	return c
}

func (c CacheConfig[V]) validate() error {
	if err := checkLimits(c.MaxKeyBytes, c.MaxValueBytes); err != nil {
		return err
	}
	if c.Size < 1 {
		return fmt.Errorf("replmap: cache Size %d is below 1", c.Size)
	}
	return nil
}
