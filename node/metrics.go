package node

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics is the node's Prometheus registry (its own, not the global one) and the metrics
// that are not read from the channel client and the replicas at scrape time.
type metrics struct {
	reg       *prometheus.Registry
	rtt       prometheus.Histogram
	requests  *prometheus.CounterVec
	streams   prometheus.Gauge
	sseEvents prometheus.Counter
}

func newMetrics(n *Node) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		rtt: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "redisync_redis_rtt_seconds",
			Help:    "Round-trip time of the PING the node sends Redis every heartbeat.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "redisync_http_requests_total",
			Help: "HTTP requests answered, by route pattern and status code.",
		}, []string{"route", "code"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "redisync_sse_streams",
			Help: "SSE streams open now.",
		}),
		sseEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "redisync_sse_events_sent_total",
			Help: "Events written to SSE streams.",
		}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.rtt, m.requests, m.streams, m.sseEvents,
		nodeCollector{n},
	)
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// instrument counts every request by route and status code.
func (m *metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		route := r.Pattern // set by the ServeMux on this request
		if route == "" {
			route = "none"
		}
		code := rec.code
		if code == 0 {
			code = http.StatusOK
		}
		m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	})
}

// statusRecorder remembers the status code written through it.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flush, write deadlines).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Flush implements http.Flusher for code that asserts it.
func (s *statusRecorder) Flush() { _ = http.NewResponseController(s.ResponseWriter).Flush() }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// The metrics read at scrape time from the channel client, the replicas and the last heartbeat.
var (
	descPublished  = desc("redisync_messages_published_total", "Messages this node appended to channels: channel publishes and map writes.")
	descDelivered  = desc("redisync_messages_delivered_total", "Messages delivered to this node's subscriptions (map replicas and SSE streams).")
	descFromLog    = desc("redisync_messages_from_log_total", "Messages delivered from the log (catch-up) rather than from pub/sub.")
	descResets     = desc("redisync_resets_total", "Reset events: history a subscription could not deliver (trimmed, epoch changed, rewound).")
	descGaps       = desc("redisync_gaps_filled_total", "Catch-ups from the log started by a hole in the live pub/sub sequence.")
	descTailLosses = desc("redisync_tail_losses_total", "Idle head reads that found messages pub/sub never brought.")
	descDups       = desc("redisync_duplicates_dropped_total", "Live messages dropped as already delivered.")
	descOverflows  = desc("redisync_overflows_total", "Live envelopes dropped because a subscription's queue was full (it caught up from the log).")
	descJunk       = desc("redisync_junk_messages_total", "Pub/sub messages that were not valid redisync envelopes, ignored.")
	descReconnects = desc("redisync_pubsub_reconnects_total", "Pub/sub connections re-established.")
	descRetries    = desc("redisync_publish_retries_total", "Append script calls repeated after a transient Redis failure.")
	descRedisUp    = desc("redisync_redis_up", "1 if Redis answered the last heartbeat PING, else 0.")
	descInfo       = desc("redisync_node_info", "Always 1; labels name the node.", "id", "version")
	descStart      = desc("redisync_node_start_time_seconds", "When the node started, in seconds since the Unix epoch.")

	descReady     = desc("redisync_map_ready", "1 once the map's replica has loaded, else 0.", "map")
	descApplied   = desc("redisync_map_applied_seq", "Seq of the last change the replica applied.", "map")
	descHead      = desc("redisync_map_head_seq", "Seq of the newest change in Redis, at the last heartbeat.", "map")
	descLag       = desc("redisync_map_lag_messages", "Changes in Redis the replica had not applied, at the last heartbeat.", "map")
	descLagSec    = desc("redisync_map_lag_seconds", "Age of the oldest change the replica had not applied (Redis's clock), at the last heartbeat; 0 when caught up.", "map")
	descStaleness = desc("redisync_map_staleness_seconds", "Time since the replica last confirmed it was current.", "map")
	descKeys      = desc("redisync_map_keys", "Keys in the replica.", "map")
	descBoot      = desc("redisync_map_bootstrap_duration_seconds", "How long the replica's first load took (snapshot and catch-up); absent while loading.", "map")
	descChanges   = desc("redisync_map_changes_applied_total", "Operations applied to the replica.", "map")
	descSnaps     = desc("redisync_map_snapshots_total", "Snapshots the replica loaded, the first one included.", "map")
	descResnaps   = desc("redisync_map_resnapshots_total", "Snapshots loaded again after a reset or a digest mismatch.", "map")
	descMatch     = desc("redisync_map_digest_match", "1 if the replica's digest equalled Redis's at the same seq when last compared, 0 if not; absent before.", "map")
	descWrites    = desc("redisync_map_writes_total", "Writes made through this node's HTTP API, by result (ok; conflict: a failed condition or a delete of an absent key; error).", "map", "result")
	descChanHead  = desc("redisync_channel_head_seq", "Seq of the newest message of a relayed channel, at the last heartbeat.", "channel")
)

// nodeCollector reads the node's state at scrape time.
type nodeCollector struct{ n *Node }

func (c nodeCollector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c nodeCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	s := n.cl.Stats()
	var mapWrites uint64
	for _, h := range n.maps {
		mapWrites += h.writes.ok.Load()
	}
	counter(descPublished, s.Published+mapWrites)
	counter(descDelivered, s.Delivered)
	counter(descFromLog, s.FromLog)
	counter(descResets, s.Resets)
	counter(descGaps, s.GapsFilled)
	counter(descTailLosses, s.TailLosses)
	counter(descDups, s.Duplicates)
	counter(descOverflows, s.Overflows)
	counter(descJunk, s.Junk)
	counter(descReconnects, s.Reconnects)
	counter(descRetries, s.PublishRetries)
	gauge(descRedisUp, b2f(n.redisUp.Load()))
	gauge(descInfo, 1, n.cfg.ID, n.cfg.Version)
	gauge(descStart, float64(n.started.UnixNano())/1e9)

	for _, name := range n.names {
		h := n.maps[name]
		m := h.m
		pos := m.Position()
		gauge(descReady, b2f(m.Ready()), name)
		gauge(descApplied, float64(pos.Seq), name)
		gauge(descKeys, float64(m.Len()), name)
		gauge(descStaleness, m.Staleness().Seconds(), name)
		if d := h.bootstrap.Load(); d > 0 {
			gauge(descBoot, time.Duration(d).Seconds(), name)
		}
		ms := m.Stats()
		counter(descChanges, ms.Changes, name)
		counter(descSnaps, ms.Snapshots, name)
		counter(descResnaps, ms.Resnapshots, name)
		counter(descWrites, h.writes.ok.Load(), name, "ok")
		counter(descWrites, h.writes.conflict.Load(), name, "conflict")
		counter(descWrites, h.writes.failed.Load(), name, "error")
		h.mu.Lock()
		last := h.last
		h.mu.Unlock()
		if last.ok {
			gauge(descHead, float64(last.st.Head.Seq), name)
			gauge(descLag, float64(last.st.Lag), name)
			gauge(descLagSec, last.st.LagTime.Seconds(), name)
		}
		if last.match != nil {
			gauge(descMatch, b2f(*last.match), name)
		}
	}
	for _, name := range n.channelNames() {
		r := n.chans[name]
		r.mu.Lock()
		head, ok := r.head, r.ok
		r.mu.Unlock()
		if ok {
			gauge(descChanHead, float64(head.Seq), name)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
