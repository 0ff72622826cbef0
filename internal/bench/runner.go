package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/internal/wire"
	"github.com/redisync/redisync/redisconn"
)

// Runner runs scenarios against one Redis. Its life goes from New to Close; it runs one
// scenario at a time (measurements share the machine, so running two at once would only
// measure the contention).
type Runner struct {
	cfg     Config
	prefix  string         // cfg.Prefix and a random suffix: every key and channel of this run
	base    time.Time      // clock origin of the timestamps in messages
	admin   rueidis.Client // INFO, PUBSUB NUMSUB and key clean-up, outside measured time
	machine Machine
}

// Machine describes where a run took place.
type Machine struct {
	GoVersion    string `json:"go_version"`
	OS           string `json:"os"`
	Arch         string `json:"arch"`
	CPUs         int    `json:"cpus"`
	GOMAXPROCS   int    `json:"gomaxprocs"`
	RedisVersion string `json:"redis_version"`
	// MemoryBytes is the machine's memory (MemTotal of /proc/meminfo); 0 where unknown.
	MemoryBytes uint64 `json:"memory_bytes,omitempty"`
}

// memTotal returns MemTotal of /proc/meminfo in bytes, or 0.
func memTotal() uint64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kib, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kib << 10
		}
	}
	return 0
}

// New connects to the Redis of cfg.URL and returns a Runner. Close releases it.
func New(ctx context.Context, cfg Config) (*Runner, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.URL == "" {
		return nil, fmt.Errorf("bench: no Redis URL")
	}
	var id [4]byte
	_, _ = rand.Read(id[:]) // crypto/rand.Read never fails
	r := &Runner{cfg: cfg, prefix: cfg.Prefix + "-" + hex.EncodeToString(id[:]), base: time.Now()}
	admin, err := redisconn.Open(ctx, redisconn.Options{URL: cfg.URL})
	if err != nil {
		return nil, err
	}
	r.admin = admin
	info, err := r.info(ctx, "server")
	if err != nil {
		admin.Close()
		return nil, fmt.Errorf("bench: INFO server: %w", err)
	}
	r.machine = Machine{
		GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH,
		CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), RedisVersion: info["redis_version"],
		MemoryBytes: memTotal(),
	}
	return r, nil
}

// Machine describes the machine and the Redis the Runner measures.
func (r *Runner) Machine() Machine { return r.machine }

// Config returns the Runner's configuration, defaults applied.
func (r *Runner) Config() Config { return r.cfg }

// Close deletes whatever keys a measurement interrupted by an error left behind, and closes
// the Runner's Redis client. It is idempotent.
func (r *Runner) Close() error {
	if r.admin == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := r.deleteKeys(ctx, r.prefix+":*")
	r.admin.Close()
	r.admin = nil
	return err
}

// Run runs one scenario.
func (r *Runner) Run(ctx context.Context, s Scenario) (Result, error) {
	res := Result{Scenario: s.Name, Summary: s.Summary, Baseline: BaselineRawPubSub, Machine: r.machine, Started: time.Now().UTC()}
	if err := s.run(ctx, r, &res); err != nil {
		return res, fmt.Errorf("%s: %w", s.Name, err)
	}
	return res, nil
}

// compare measures ld on redisync, then on raw pub/sub, each on a fresh channel.
func (r *Runner) compare(ctx context.Context, ld load) (rs, raw Side, err error) {
	if rs, err = r.measure(ctx, redisyncSystem{}, ld); err != nil {
		return rs, raw, err
	}
	raw, err = r.measure(ctx, rawSystem{}, ld)
	return rs, raw, err
}

// openRedis opens a Redis client with the options every client of the bench shares.
func (r *Runner) openRedis(ctx context.Context) (rueidis.Client, error) {
	return redisconn.Open(ctx, redisconn.Options{URL: r.cfg.URL})
}

// openChannel opens a Redis client, appended to rcs for the caller to close, and a
// channel.Client over it with the bench's prefix.
func (r *Runner) openChannel(ctx context.Context, rcs *[]rueidis.Client) (*channel.Client, error) {
	rc, err := r.openRedis(ctx)
	if err != nil {
		return nil, err
	}
	*rcs = append(*rcs, rc)
	return r.newChannel(rc, r.cfg.Channel)
}

// openTapped is openChannel with a tap between the channel.Client and its Redis client, and
// cfg for the channel.Client.
func (r *Runner) openTapped(ctx context.Context, rcs *[]rueidis.Client, cfg channel.Config) (*channel.Client, *tap, error) {
	rc, err := r.openRedis(ctx)
	if err != nil {
		return nil, nil, err
	}
	*rcs = append(*rcs, rc)
	t := newTap(rc)
	cl, err := r.newChannel(t, cfg)
	return cl, t, err
}

// newChannel returns a channel.Client over rc with cfg, the bench's prefix and, when cfg has
// none, the bench's logger.
func (r *Runner) newChannel(rc rueidis.Client, cfg channel.Config) (*channel.Client, error) {
	cfg.Prefix = r.prefix
	if cfg.Logger == nil {
		cfg.Logger = r.cfg.Logger
	}
	return channel.New(rc, cfg)
}

// pubsubName is the pub/sub channel of the redisync channel name (PROTOCOL.md, section 1).
func (r *Runner) pubsubName(name string) string { return mustKeys(r.prefix, name).PubSub }

// mustKeys are the Redis names of the bench's own channel or map name.
func mustKeys(prefix, name string) wire.Keys {
	k, err := wire.KeysFor(prefix, name)
	if err != nil {
		panic(err) // the bench's own names are valid
	}
	return k
}

// rawName is the pub/sub channel of the raw side of name.
func (r *Runner) rawName(name string) string { return r.prefix + ":raw:" + name }

// deleteChannel deletes the keys of the redisync channel name.
func (r *Runner) deleteChannel(ctx context.Context, name string) error {
	return r.deleteKeys(ctx, r.prefix+":{"+name+"}:*")
}

func (r *Runner) deleteKeys(ctx context.Context, pattern string) error {
	var cursor uint64
	for {
		e, err := r.admin.Do(ctx, r.admin.B().Scan().Cursor(cursor).Match(pattern).Count(1000).Build()).AsScanEntry()
		if err != nil {
			return fmt.Errorf("bench: delete keys %s: %w", pattern, err)
		}
		if len(e.Elements) > 0 {
			if err := r.admin.Do(ctx, r.admin.B().Unlink().Key(e.Elements...).Build()).Error(); err != nil {
				return fmt.Errorf("bench: delete keys %s: %w", pattern, err)
			}
		}
		if cursor = e.Cursor; cursor == 0 {
			return nil
		}
	}
}

// numsub returns the number of subscribers of a pub/sub channel.
func (r *Runner) numsub(ctx context.Context, name string) (int64, error) {
	m, err := r.admin.Do(ctx, r.admin.B().PubsubNumsub().Channel(name).Build()).AsIntMap()
	return m[name], err
}

// info returns the fields of INFO sections.
func (r *Runner) info(ctx context.Context, sections ...string) (map[string]string, error) {
	s, err := r.admin.Do(ctx, r.admin.B().Info().Section(sections...).Build()).ToString()
	if err != nil {
		return nil, err
	}
	fields := map[string]string{}
	for line := range strings.Lines(s) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && !strings.HasPrefix(k, "#") {
			fields[k] = v
		}
	}
	return fields, nil
}

// startProfile starts a CPU profile named for the measurement, when profiles are asked for.
// The returned function stops it.
func (r *Runner) startProfile(name string) (stop func() error, err error) {
	if r.cfg.CPUProfile == "" {
		return func() error { return nil }, nil
	}
	path := r.cfg.CPUProfile + "-" + name + ".pprof"
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("bench: CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("bench: CPU profile %s: %w", path, err)
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

func (r *Runner) progress(format string, args ...any) {
	fmt.Fprintf(r.cfg.Progress, format+"\n", args...)
}
