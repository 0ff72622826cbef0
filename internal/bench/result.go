package bench

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is what a scenario measured: the comparison rows, and every side in detail. It
// marshals to JSON for plotting (one object per scenario).
type Result struct {
	Scenario string `json:"scenario"`
	Summary  string `json:"summary"`
	// Baseline names what the raw figures measure: raw pub/sub, a plain HSCAN, a plain map.
	Baseline string    `json:"baseline"`
	Params   Params    `json:"params"`
	Rows     []Row     `json:"rows"`
	Sides    []Side    `json:"sides"`
	Machine  Machine   `json:"machine"`
	Started  time.Time `json:"started"`
}

// Params are the settings a scenario ran with.
type Params struct {
	Size             int     `json:"size,omitempty"`               // bytes per message (map-latency: per value)
	Subscribers      int     `json:"subscribers,omitempty"`        // receiving every message (replicas, for maps)
	Publishers       int     `json:"publishers,omitempty"`         // goroutines publishing at once
	Batch            int     `json:"batch,omitempty"`              // messages per publish call
	DurationSeconds  float64 `json:"duration_seconds,omitempty"`   // publishing, per side
	Rates            []int   `json:"rates,omitempty"`              // steady publish rates, messages/s
	Messages         int     `json:"messages,omitempty"`           // messages missed (catchup)
	Keys             int     `json:"keys,omitempty"`               // keys of the map
	KeyBytes         int     `json:"key_bytes,omitempty"`          // bytes per key
	ValueBytes       int     `json:"value_bytes,omitempty"`        // bytes per value (bootstrap, get)
	WriteRate        int     `json:"write_rate,omitempty"`         // writes/s by another node meanwhile (bootstrap)
	BenchTimeSeconds float64 `json:"bench_time_seconds,omitempty"` // time of reads per measurement (get)
	Clients          int     `json:"clients,omitempty"`            // clients the subscriptions are spread over (idle)
	IdleCheckSeconds float64 `json:"idle_check_seconds,omitempty"` // channel.Config.IdleCheck (idle)
}

// Row is one figure of redisync, beside raw pub/sub's when there is a baseline.
type Row struct {
	Metric   string   `json:"metric"`          // what is measured: "delivered", "p99"…
	Rate     int      `json:"rate,omitempty"`  // the steady publish rate it was measured at, messages/s
	Unit     string   `json:"unit"`            // "msgs/s", "us" or "s"
	Redisync float64  `json:"redisync"`        //
	Raw      *float64 `json:"raw,omitempty"`   // raw pub/sub's figure; none when there is no baseline
	Ratio    *float64 `json:"ratio,omitempty"` // Redisync / Raw
	Target   string   `json:"target,omitempty"`
	Met      *bool    `json:"met,omitempty"` // whether the target was met, redisync having lost nothing
	// Baseline names what Raw is when it is not the Result's baseline: Centrifuge, or a
	// computed figure.
	Baseline string `json:"baseline,omitempty"`
}

// BaselineRawPubSub is the Baseline of the scenarios that compare with raw Redis pub/sub.
const BaselineRawPubSub = "raw pub/sub"

// Side is one measurement of one system (redisync or raw pub/sub).
type Side struct {
	System string `json:"system"`         // "redisync" or "raw"
	Rate   int    `json:"rate,omitempty"` // steady publish rate asked for, messages/s; 0: as fast as possible
	// Published counts the measured messages Redis accepted; Delivered those each subscriber
	// received; Lost what subscribers never received, summed over them.
	Published int64   `json:"published"`
	Delivered []int64 `json:"delivered"`
	Lost      int64   `json:"lost"`
	// OutOfOrder counts redisync events whose seq did not follow the previous one, Resets
	// reset events, Junk messages the bench did not publish. All must be 0.
	OutOfOrder int64 `json:"out_of_order"`
	Resets     int64 `json:"resets"`
	Junk       int64 `json:"junk"`
	// Seconds runs from the first publish call to the last delivery, PublishSeconds to the
	// last publish reply.
	Seconds        float64 `json:"seconds"`
	PublishSeconds float64 `json:"publish_seconds"`
	// Throughput is messages/s delivered to every subscriber: the fewest any subscriber
	// received, over Seconds. PublishRate is messages/s accepted by Redis.
	Throughput  float64 `json:"throughput"`
	PublishRate float64 `json:"publish_rate"`
	// Latency runs from the publish call to the delivery, over every delivery, when recorded.
	Latency *Latency `json:"latency_us,omitempty"`
	// Ack runs from the publish call to its return, over every call.
	Ack *Latency `json:"ack_us,omitempty"`
	// Sched is how long this process's goroutines waited to run once runnable (the Go
	// runtime's /sched/latencies:seconds, to its buckets' resolution), recorded by the fanout
	// scenario, whose clients all live in this process.
	Sched *Latency `json:"sched_us,omitempty"`
	// CPU time of this process (publishers and subscribers) and of Redis during Seconds.
	ClientCPUSeconds float64 `json:"client_cpu_seconds"`
	RedisCPUSeconds  float64 `json:"redis_cpu_seconds"`
	// Commands is what Redis ran meanwhile, by command name (INFO commandstats).
	Commands map[string]CommandStat `json:"redis_commands,omitempty"`
	// Stats are the system's own counters: redisync's script calls, catch-ups from the log,
	// reconnects…
	Stats map[string]uint64 `json:"stats,omitempty"`

	// A map load (bootstrap): the keys loaded, the live heap they took (after a GC, against
	// the heap before the load), and the writes another node made meanwhile. Seconds is the
	// load's time, Throughput keys/s, Lost the keys the replica got wrong.
	Keys         int64 `json:"keys,omitempty"`
	HeapBytes    int64 `json:"heap_bytes,omitempty"`
	WritesDuring int64 `json:"writes_during,omitempty"`

	// Local reads (get): the reads of Goroutines goroutines, their wall time per read, and the
	// heap allocations per read (rounded down).
	Goroutines  int     `json:"goroutines,omitempty"`
	Ops         int64   `json:"ops,omitempty"`
	NsPerOp     float64 `json:"ns_per_op,omitempty"`
	AllocsPerOp *int64  `json:"allocs_per_op,omitempty"`
	BytesPerOp  *int64  `json:"bytes_per_op,omitempty"`

	// Idle subscriptions (idle): the subscriptions held over Seconds, and the commands per
	// second Redis ran meanwhile (INFO commandstats, the bench's INFO aside): all of them,
	// those the clients sent themselves (keep-alive PINGs and commands run inside scripts
	// aside), and the keep-alive PINGs.
	Subscriptions      int     `json:"subscriptions,omitempty"`
	CommandsPerSecond  float64 `json:"commands_per_second,omitempty"`
	SentPerSecond      float64 `json:"sent_per_second,omitempty"`
	KeepAlivePerSecond float64 `json:"keep_alive_per_second,omitempty"`

	// The busiest interval of a storm (storm), sampled every stormSample: Redis's CPU in
	// cores (1 = one core busy) and its commands per second (INFO commandstats, commands run
	// inside scripts included).
	PeakRedisCPU          float64 `json:"peak_redis_cpu,omitempty"`
	PeakCommandsPerSecond float64 `json:"peak_commands_per_second,omitempty"`
}

// Latency summarizes latencies, in microseconds.
type Latency struct {
	Samples int     `json:"samples"`
	P50     float64 `json:"p50"`
	P90     float64 `json:"p90"`
	P99     float64 `json:"p99"`
	P999    float64 `json:"p999"`
	Max     float64 `json:"max"`
}

// Lossless reports whether every subscriber received every message once, in order.
func (s Side) Lossless() bool {
	return s.Lost == 0 && s.OutOfOrder == 0 && s.Resets == 0 && s.Junk == 0
}

// Problems lists the broken guarantees: a redisync side that lost, reordered or reset
// messages. Raw pub/sub's losses are its nature, not a problem.
func (r Result) Problems() []string {
	var out []string
	for _, s := range r.Sides {
		if s.System == "redisync" && !s.Lossless() {
			out = append(out, fmt.Sprintf("%s: redisync %s: %d lost, %d out of order, %d resets, %d junk",
				r.Scenario, sysLabel(s.System, s.Rate), s.Lost, s.OutOfOrder, s.Resets, s.Junk))
		}
	}
	return out
}

// WriteText writes r as a table, then a line per side on what it cost.
func (r Result) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%s — %s\n", r.Scenario, r.Summary)
	fmt.Fprintf(&b, "  %s\n", r.Params.describe())
	baseline := cmp.Or(r.Baseline, BaselineRawPubSub)
	tw := tabwriter.NewWriter(&b, 0, 0, 3, ' ', 0)
	fmt.Fprintf(tw, "  metric\tredisync\t%s\tratio\ttarget\tmet\t\n", baseline)
	for _, row := range r.Rows {
		metric := row.Metric
		if row.Rate > 0 {
			metric += " @" + thousands(float64(row.Rate)) + "/s"
		}
		if row.Baseline != "" {
			metric += " (vs " + row.Baseline + ")"
		}
		raw, ratio, met := "—", "—", ""
		if row.Raw != nil {
			raw = formatValue(*row.Raw, row.Unit)
		}
		if row.Ratio != nil {
			ratio = strconv.FormatFloat(*row.Ratio, 'f', 2, 64)
		}
		if row.Met != nil {
			met = map[bool]string{true: "met", false: "NOT MET"}[*row.Met]
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t\n", metric, formatValue(row.Redisync, row.Unit), raw, ratio, row.Target, met)
	}
	tw.Flush()
	for _, s := range r.Sides {
		fmt.Fprintf(&b, "  %s\n", s.describe(baseline))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (p Params) describe() string {
	var parts []string
	switch {
	case p.Keys > 0 && p.Size > 0: // map-latency
		parts = append(parts, fmt.Sprintf("%d-byte values, %d-byte keys (raw: %d-byte messages)", p.Size, p.KeyBytes, p.Size+p.KeyBytes),
			plural(p.Keys, "key"), plural(p.Subscribers, "replica"))
	case p.Keys > 0: // bootstrap, get
		parts = append(parts, plural(p.Keys, "key"), fmt.Sprintf("%d-byte keys, %d-byte values", p.KeyBytes, p.ValueBytes))
	case p.Clients > 0: // idle
		parts = append(parts, fmt.Sprintf("%s idle subscriptions over %s, a channel each holding one message", thousands(float64(p.Subscribers)), plural(p.Clients, "client")),
			fmt.Sprintf("IdleCheck %v", time.Duration(p.IdleCheckSeconds*float64(time.Second))))
		if p.DurationSeconds > 0 {
			parts = append(parts, fmt.Sprintf("commands counted for %v per side", time.Duration(p.DurationSeconds*float64(time.Second))))
		}
		return strings.Join(parts, ", ")
	default:
		parts = append(parts, fmt.Sprintf("%d-byte messages", p.Size), plural(p.Subscribers, "subscriber"))
	}
	if p.WriteRate > 0 {
		parts = append(parts, fmt.Sprintf("another node writing up to %s/s", thousands(float64(p.WriteRate))))
	}
	if p.BenchTimeSeconds > 0 {
		parts = append(parts, fmt.Sprintf("reads timed for %v each", time.Duration(p.BenchTimeSeconds*float64(time.Second))))
	}
	if p.Publishers > 0 {
		parts = append(parts, plural(p.Publishers, "publishing goroutine"))
	}
	if p.Batch > 1 {
		parts = append(parts, fmt.Sprintf("%d messages per call", p.Batch))
	}
	if p.DurationSeconds > 0 {
		parts = append(parts, fmt.Sprintf("%v per side", time.Duration(p.DurationSeconds*float64(time.Second))))
	}
	if p.Messages > 0 {
		parts = append(parts, fmt.Sprintf("%s messages", thousands(float64(p.Messages))))
	}
	return strings.Join(parts, ", ")
}

// describe says in one line what a side published, delivered and cost; baseline names the
// raw system.
func (s Side) describe(baseline string) string {
	system := s.System
	if system == "raw" && baseline != BaselineRawPubSub {
		system = "raw (" + baseline + ")"
	}
	var b strings.Builder
	switch {
	case s.NsPerOp > 0:
		fmt.Fprintf(&b, "%s, %s: %s reads, %.1f ns/op", system, plural(s.Goroutines, "goroutine"), thousands(float64(s.Ops)), s.NsPerOp)
		if s.AllocsPerOp != nil && s.BytesPerOp != nil {
			fmt.Fprintf(&b, ", %d allocs/op, %d B/op", *s.AllocsPerOp, *s.BytesPerOp)
		}
		return b.String()
	case s.Subscriptions > 0:
		fmt.Fprintf(&b, "%s: %s idle subscriptions for %.2fs: Redis ran %s commands/s (%s keep-alive PINGs), %s/s sent by the clients themselves",
			system, thousands(float64(s.Subscriptions)), s.Seconds, thousands(s.CommandsPerSecond), thousands(s.KeepAlivePerSecond), thousands(s.SentPerSecond))
		if n, ok := s.Stats["sent_counted_by_clients"]; ok {
			fmt.Fprintf(&b, " (the clients counted %s sent, keep-alive aside)", thousands(float64(n)))
		}
		if s.Resets+s.OutOfOrder+s.Junk > 0 {
			fmt.Fprintf(&b, "; %d resets, %d out of order, %d junk", s.Resets, s.OutOfOrder, s.Junk)
		}
		if n := s.Stats["reconnects"]; n > 0 {
			fmt.Fprintf(&b, "; %d reconnects", n)
		}
		s.describeCost(&b)
		return b.String()
	case s.Keys > 0:
		fmt.Fprintf(&b, "%s: loaded %s keys in %.3fs (%s keys/s), live heap %.1f MiB (%.1f B/key)",
			system, thousands(float64(s.Keys)), s.Seconds, thousands(s.Throughput),
			float64(s.HeapBytes)/(1<<20), float64(s.HeapBytes)/float64(s.Keys))
		if s.WritesDuring > 0 {
			fmt.Fprintf(&b, ", %s writes by another node meanwhile", thousands(float64(s.WritesDuring)))
		}
		if s.System == "redisync" {
			if s.Lost == 0 {
				b.WriteString("; the replica matches Redis key by key")
			} else {
				fmt.Fprintf(&b, "; %s KEYS DIFFER from Redis", thousands(float64(s.Lost)))
			}
		}
		s.describeCost(&b)
		return b.String()
	}
	fmt.Fprintf(&b, "%s: %s messages", sysLabel(system, s.Rate), thousands(float64(s.Published)))
	if s.PublishSeconds > 0 {
		fmt.Fprintf(&b, " published in %.2fs (%s/s),", s.PublishSeconds, thousands(s.PublishRate))
	}
	fmt.Fprintf(&b, " delivered to all in %.2fs", s.Seconds)
	if s.Lossless() {
		b.WriteString(", nothing lost")
	} else {
		fmt.Fprintf(&b, ", LOST %s", thousands(float64(s.Lost)))
		if s.OutOfOrder+s.Resets+s.Junk > 0 {
			fmt.Fprintf(&b, " (%d out of order, %d resets, %d junk)", s.OutOfOrder, s.Resets, s.Junk)
		}
	}
	if s.Ack != nil {
		fmt.Fprintf(&b, "; publish call p50 %s, p99 %s", formatValue(s.Ack.P50, "us"), formatValue(s.Ack.P99, "us"))
	}
	if s.Sched != nil {
		fmt.Fprintf(&b, "; goroutines waited to run p50 %s, p99 %s", formatValue(s.Sched.P50, "us"), formatValue(s.Sched.P99, "us"))
	}
	if calls := s.Stats["publish_calls"]; calls > 0 {
		fmt.Fprintf(&b, "; %s script calls (%.1f msgs/call)", thousands(float64(calls)), float64(s.Stats["published"])/float64(calls))
	}
	if n := s.Stats["from_log"]; n > 0 {
		fmt.Fprintf(&b, "; %s deliveries from the log", thousands(float64(n)))
	}
	if n := s.Stats["reconnects"]; n > 0 {
		fmt.Fprintf(&b, "; %d reconnects", n)
	}
	if n := s.Stats["resnapshots"]; n > 0 {
		fmt.Fprintf(&b, "; %d resnapshots", n)
	}
	if s.PeakCommandsPerSecond > 0 {
		fmt.Fprintf(&b, "; Redis at its busiest: %.0f%% CPU, %s commands/s", 100*s.PeakRedisCPU, thousands(s.PeakCommandsPerSecond))
	}
	s.describeCost(&b)
	return b.String()
}

// describeCost writes the CPU the side used and the commands Redis spent most time on.
func (s Side) describeCost(b *strings.Builder) {
	if s.Seconds > 0 {
		fmt.Fprintf(b, "; CPU: client %.0f%%, Redis %.0f%%", 100*s.ClientCPUSeconds/s.Seconds, 100*s.RedisCPUSeconds/s.Seconds)
	}
	// The commands Redis spent most time on.
	names := slices.Collect(maps.Keys(s.Commands))
	slices.SortFunc(names, func(a, b string) int { return cmp.Compare(s.Commands[b].Usec, s.Commands[a].Usec) })
	var top []string
	for _, n := range names {
		if c := s.Commands[n]; len(top) < 3 && n != "info" {
			top = append(top, fmt.Sprintf("%s %s×%.1fµs", n, thousands(float64(c.Calls)), c.UsecPerCall))
		}
	}
	if len(top) > 0 {
		fmt.Fprintf(b, "; Redis ran %s", strings.Join(top, ", "))
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return thousands(float64(n)) + " " + what + "s"
}

// sysLabel names a side: "redisync", "raw @10,000/s"…
func sysLabel(system string, rate int) string {
	if rate > 0 {
		return system + " @" + thousands(float64(rate)) + "/s"
	}
	return system
}

func formatValue(v float64, unit string) string {
	switch unit {
	case "us":
		if v >= 1000 {
			return strconv.FormatFloat(v/1000, 'f', 2, 64) + " ms"
		}
		return strconv.FormatFloat(v, 'f', 0, 64) + " µs"
	case "s":
		return strconv.FormatFloat(v, 'f', 3, 64) + " s"
	case "msgs/s":
		return thousands(v) + "/s"
	case "ns":
		return strconv.FormatFloat(v, 'f', 1, 64) + " ns"
	case "B":
		return strconv.FormatFloat(v, 'f', 1, 64) + " B"
	case "%":
		return strconv.FormatFloat(v, 'f', 0, 64) + "%"
	case "cmds/s":
		return thousands(v) + "/s"
	case "cmds":
		return strconv.FormatFloat(v, 'f', 2, 64)
	case "allocs/op":
		return strconv.FormatFloat(v, 'f', 0, 64) + " allocs/op"
	}
	return strconv.FormatFloat(v, 'g', 4, 64) + " " + unit
}

// thousands formats v rounded to a whole number with thousands separators.
func thousands(v float64) string {
	s := strconv.FormatFloat(v, 'f', 0, 64)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// compareRow returns the row of one figure of two sides.
func compareRow(metric string, rate int, unit string, rs, raw float64) Row {
	row := Row{Metric: metric, Rate: rate, Unit: unit, Redisync: rs, Raw: &raw}
	if raw > 0 {
		ratio := rs / raw
		row.Ratio = &ratio
	}
	return row
}

// atLeast sets the row's target to a ratio of at least min, met when redisync lost nothing.
func (row Row) atLeast(min float64, rs Side) Row {
	row.Target = fmt.Sprintf("≥ %.2f× raw", min)
	met := row.Ratio != nil && *row.Ratio >= min && rs.Lossless()
	row.Met = &met
	return row
}

// below sets the row's target to an absolute limit: met when redisync's figure is under it
// (or, with orEqual, at it) and redisync lost nothing.
func (row Row) below(limit float64, orEqual bool, target string, rs Side) Row {
	row.Target = target
	met := (row.Redisync < limit || (orEqual && row.Redisync == limit)) && rs.Lossless()
	row.Met = &met
	return row
}

// atMost sets the row's target to a ratio of at most max, met when redisync lost nothing.
func (row Row) atMost(max float64, rs Side) Row {
	row.Target = fmt.Sprintf("≤ %.2f× raw", max)
	met := row.Ratio != nil && *row.Ratio <= max && rs.Lossless()
	row.Met = &met
	return row
}
