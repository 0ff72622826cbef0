package bench

import (
	"cmp"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/redisync/redisync/channel"
)

// Defaults for the zero fields of Config.
const (
	DefaultDuration        = 5 * time.Second
	DefaultSize            = 256
	DefaultSubscribers     = 3
	DefaultPublishers      = 16
	DefaultBatch           = 100
	DefaultCatchupMessages = 100_000
	DefaultPrefix          = channel.DefaultPrefix + "-bench"
	DefaultSettle          = time.Second
	DefaultBootstrapKeys   = 1_000_000
	DefaultBootstrapWrites = 1_000 // writes/s during the bootstrap
	DefaultGetKeys         = 100_000
	DefaultBenchTime       = time.Second
	DefaultClients         = 200   // subscribing clients of the fanout and storm scenarios
	DefaultFanoutRate      = 1_000 // messages/s of the fanout scenario
	DefaultStormMessages   = 10_000
	DefaultIdleClients     = 100
	DefaultIdleSubs        = 1_000
	DefaultIdleWindow      = 5 * time.Second
)

// BootstrapValueBytes is the size of every value of the bootstrap scenario's map.
const BootstrapValueBytes = 100

// MinSize is the smallest payload: the bench writes a header into every message (a kind byte, an
// index and the time it was published) to measure latency and count losses.
const MinSize = headerSize

// DefaultRates returns the publish rates of the latency scenario: 1,000 and 10,000 messages/s.
func DefaultRates() []int { return []int{1_000, 10_000} }

// DefaultSweepRates returns the publish rates of the latency-sweep scenario, the points of
// the latency plot: 1,000 to 20,000 messages/s.
func DefaultSweepRates() []int { return []int{1_000, 2_000, 5_000, 10_000, 20_000} }

// Config configures a Runner. A zero field takes the default named in its comment.
type Config struct {
	// URL is the Redis to measure against, as for redisconn.Open. Required.
	URL string
	// Duration is how long each side of each measurement publishes: every scenario runs
	// redisync for Duration, then raw pub/sub for Duration (the latency scenario does so at
	// each rate). Default DefaultDuration.
	Duration time.Duration
	// Size is the payload of every message, in bytes, at least MinSize. Default DefaultSize.
	Size int
	// Subscribers is the number of subscribers receiving every message, each with a Redis
	// client (and connections) of its own, in this process. Default DefaultSubscribers.
	Subscribers int
	// Publishers is the number of goroutines publishing at once in the throughput-concurrent
	// scenario, and the pool that the paced publisher of the latency scenario hands messages
	// to. Default DefaultPublishers.
	Publishers int
	// Batch is the number of messages per call in the throughput-batch scenario.
	// Default DefaultBatch.
	Batch int
	// Rates are the steady publish rates, in messages/s, of the latency and map-latency
	// scenarios. Default DefaultRates().
	Rates []int
	// SweepRates are the steady publish rates, in messages/s, of the latency-sweep scenario.
	// Default DefaultSweepRates().
	SweepRates []int
	// CatchupMessages is the number of messages a subscriber missed in the catchup scenario.
	// Default DefaultCatchupMessages.
	CatchupMessages int
	// BootstrapKeys is the number of keys of the map a new node loads in the bootstrap
	// scenario, each with a value of BootstrapValueBytes. Default DefaultBootstrapKeys.
	BootstrapKeys int
	// BootstrapWrites is the rate, in writes/s, at which another node writes to that map while
	// it loads, one write at a time (fewer when a write takes longer than 1/BootstrapWrites s).
	// Default DefaultBootstrapWrites.
	BootstrapWrites int
	// GetKeys is the number of keys of the warm replica the get scenario reads.
	// Default DefaultGetKeys.
	GetKeys int
	// BenchTime is how long the get scenario reads in each measurement (its timed loop runs
	// batches of reads until this much time is spent). Default DefaultBenchTime.
	BenchTime time.Duration
	// Clients is the number of subscribing clients of the fanout and storm scenarios, each a
	// Redis client (and connections) of its own, in this process. Default DefaultClients.
	Clients int
	// FanoutRate is the steady publish rate of the fanout scenario, in messages/s.
	// Default DefaultFanoutRate.
	FanoutRate int
	// StormMessages is the number of messages published while the storm scenario's clients
	// are cut off from pub/sub, which each then catches up on. Default DefaultStormMessages.
	StormMessages int
	// IdleClients is the number of clients of the idle scenario, over which its
	// IdleSubscriptions are spread evenly. Default DefaultIdleClients.
	IdleClients int
	// IdleSubscriptions is the number of idle subscriptions of the idle scenario, each on a
	// channel of its own. Default DefaultIdleSubs.
	IdleSubscriptions int
	// IdleWindow is how long the idle scenario counts Redis's commands, per side.
	// Default DefaultIdleWindow.
	IdleWindow time.Duration
	// IdleCheck is channel.Config.IdleCheck of the idle scenario's clients. Default:
	// Channel.IdleCheck, or channel.DefaultIdleCheck.
	IdleCheck time.Duration
	// Settle is how long a raw pub/sub side waits for more deliveries once its subscribers are
	// short of messages and bring nothing new; what is still missing then is lost. Redisync
	// sides wait at least three of its idle checks (channel.DefaultIdleCheck) longer, since
	// they fetch what pub/sub lost. Default DefaultSettle.
	Settle time.Duration
	// Prefix starts every Redis key and pub/sub channel name the bench uses; a random suffix
	// keeps runs apart. Keys are deleted when a measurement ends. Default DefaultPrefix.
	Prefix string
	// Channel configures the redisync clients; the bench sets its Prefix, and its Logger when
	// nil. Default: channel's defaults, as an application gets them.
	Channel channel.Config
	// CPUProfile, when set, names the CPU profiles written for each side of each measurement:
	// CPUProfile-SCENARIO-SYSTEM[-RATE].pprof. Default: no profiles.
	CPUProfile string
	// Progress receives a line as each measurement starts. Default: nothing.
	Progress io.Writer
	// Logger receives the warnings of the redisync clients. Default: discarded.
	Logger *slog.Logger
}

// Smoke returns c scaled down for a run of a few seconds (continuous integration): short
// measurements, a small catch-up, a small map to bootstrap and read, three sweep rates, 10
// clients for fanout and storm, and 100 idle subscriptions over 10 clients checked every
// 100 ms for 500 ms. Size and Subscribers are kept.
func Smoke(c Config) Config {
	c.Duration = 150 * time.Millisecond
	c.CatchupMessages = 2_000
	c.Settle = 500 * time.Millisecond
	c.SweepRates = []int{1_000, 5_000, 20_000}
	c.BootstrapKeys = 20_000
	c.GetKeys = 10_000
	c.BenchTime = 20 * time.Millisecond
	c.Clients = 10
	c.StormMessages = 1_000
	c.IdleClients = 10
	c.IdleSubscriptions = 100
	c.IdleCheck = 100 * time.Millisecond
	c.IdleWindow = 500 * time.Millisecond
	return c
}

func (c Config) withDefaults() Config {
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.Size == 0 {
		c.Size = DefaultSize
	}
	if c.Subscribers == 0 {
		c.Subscribers = DefaultSubscribers
	}
	if c.Publishers == 0 {
		c.Publishers = DefaultPublishers
	}
	if c.Batch == 0 {
		c.Batch = DefaultBatch
	}
	if c.Rates == nil {
		c.Rates = DefaultRates()
	}
	if c.SweepRates == nil {
		c.SweepRates = DefaultSweepRates()
	}
	if c.BootstrapKeys == 0 {
		c.BootstrapKeys = DefaultBootstrapKeys
	}
	if c.BootstrapWrites == 0 {
		c.BootstrapWrites = DefaultBootstrapWrites
	}
	if c.GetKeys == 0 {
		c.GetKeys = DefaultGetKeys
	}
	if c.BenchTime == 0 {
		c.BenchTime = DefaultBenchTime
	}
	if c.Clients == 0 {
		c.Clients = DefaultClients
	}
	if c.FanoutRate == 0 {
		c.FanoutRate = DefaultFanoutRate
	}
	if c.StormMessages == 0 {
		c.StormMessages = DefaultStormMessages
	}
	if c.IdleClients == 0 {
		c.IdleClients = DefaultIdleClients
	}
	if c.IdleSubscriptions == 0 {
		c.IdleSubscriptions = DefaultIdleSubs
	}
	if c.IdleWindow == 0 {
		c.IdleWindow = DefaultIdleWindow
	}
	if c.IdleCheck == 0 {
		c.IdleCheck = cmp.Or(c.Channel.IdleCheck, channel.DefaultIdleCheck)
	}
	if c.CatchupMessages == 0 {
		c.CatchupMessages = DefaultCatchupMessages
	}
	if c.Settle == 0 {
		c.Settle = DefaultSettle
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}

// Validate reports the first field that cannot work, URL aside (New checks it by connecting).
func (c Config) Validate() error { return c.withDefaults().validate() }

// validate reports the first field that cannot work, after defaults are applied.
func (c Config) validate() error {
	switch {
	case c.Duration < 0:
		return fmt.Errorf("bench: duration %v is negative", c.Duration)
	case c.Size < MinSize:
		return fmt.Errorf("bench: size %d is below %d bytes, the header every message carries", c.Size, MinSize)
	case c.Size > channel.DefaultMaxMessageBytes:
		return fmt.Errorf("bench: size %d is above %d bytes, a channel's default message limit", c.Size, channel.DefaultMaxMessageBytes)
	case c.Subscribers < 1:
		return fmt.Errorf("bench: %d subscribers, need at least 1", c.Subscribers)
	case c.Publishers < 1:
		return fmt.Errorf("bench: %d publishers, need at least 1", c.Publishers)
	case c.Batch < 1 || c.Batch > channel.DefaultMaxBatchMessages:
		return fmt.Errorf("bench: batch %d is outside 1..%d", c.Batch, channel.DefaultMaxBatchMessages)
	case c.Batch*c.Size > channel.DefaultMaxBatchBytes:
		return fmt.Errorf("bench: a batch of %d messages of %d bytes is above %d bytes, a channel's default batch limit",
			c.Batch, c.Size, channel.DefaultMaxBatchBytes)
	case c.CatchupMessages < 1:
		return fmt.Errorf("bench: %d catch-up messages, need at least 1", c.CatchupMessages)
	case c.Settle <= 0:
		return fmt.Errorf("bench: settle %v is not positive", c.Settle)
	case c.BootstrapKeys < 1:
		return fmt.Errorf("bench: %d bootstrap keys, need at least 1", c.BootstrapKeys)
	case c.BootstrapWrites < 1:
		return fmt.Errorf("bench: bootstrap writes %d/s, need at least 1", c.BootstrapWrites)
	case c.GetKeys < 1:
		return fmt.Errorf("bench: %d get keys, need at least 1", c.GetKeys)
	case c.BenchTime <= 0:
		return fmt.Errorf("bench: bench time %v is not positive", c.BenchTime)
	case c.Clients < 1:
		return fmt.Errorf("bench: %d clients, need at least 1", c.Clients)
	case c.FanoutRate < 1:
		return fmt.Errorf("bench: fan-out rate %d/s is below 1", c.FanoutRate)
	case c.StormMessages < 1:
		return fmt.Errorf("bench: %d storm messages, need at least 1", c.StormMessages)
	case c.IdleClients < 1:
		return fmt.Errorf("bench: %d idle clients, need at least 1", c.IdleClients)
	case c.IdleSubscriptions < c.IdleClients:
		return fmt.Errorf("bench: %d idle subscriptions for %d idle clients, need at least one each", c.IdleSubscriptions, c.IdleClients)
	case c.IdleWindow <= 0:
		return fmt.Errorf("bench: idle window %v is not positive", c.IdleWindow)
	case c.IdleCheck <= 0:
		return fmt.Errorf("bench: idle check %v is not positive", c.IdleCheck)
	}
	for _, r := range append(slices.Clone(c.Rates), c.SweepRates...) {
		if r < 1 {
			return fmt.Errorf("bench: latency rate %d/s is below 1", r)
		}
	}
	return nil
}
