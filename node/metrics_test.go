package node

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scrape reads /metrics into series -> value, a series being the name with its labels as
// written ("redisync_map_keys{map=\"m\"}").
func scrape(t *testing.T, n *testNode, headers ...string) map[string]float64 {
	t.Helper()
	r := expect(t, "GET /metrics", do(t, "GET", n.url+"/metrics", nil, headers...), http.StatusOK)
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(r.body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func TestNodeMetrics(t *testing.T) {
	srv := startRedis(t)
	n := startNode(t, srv.URL(), newPrefix(), Config{ID: "metrics-node", Maps: []string{"m"}, Channels: []string{"c"}})
	n.waitReady(t)
	waitFor(t, 5*time.Second, "a heartbeat sample of the ready replica", func() bool {
		_, ok := scrape(t, n)[`redisync_map_digest_match{map="m"}`]
		return ok
	})
	before := scrape(t, n)
	for _, name := range []string{
		"redisync_messages_published_total", "redisync_messages_delivered_total", "redisync_messages_from_log_total",
		"redisync_resets_total", "redisync_gaps_filled_total", "redisync_tail_losses_total", "redisync_duplicates_dropped_total",
		"redisync_overflows_total", "redisync_junk_messages_total", "redisync_pubsub_reconnects_total",
		"redisync_publish_retries_total", "redisync_redis_up", "redisync_node_start_time_seconds",
		`redisync_node_info{id="metrics-node",version="dev"}`,
		`redisync_map_ready{map="m"}`, `redisync_map_applied_seq{map="m"}`, `redisync_map_head_seq{map="m"}`,
		`redisync_map_lag_messages{map="m"}`, `redisync_map_lag_seconds{map="m"}`, `redisync_map_staleness_seconds{map="m"}`,
		`redisync_map_keys{map="m"}`, `redisync_map_bootstrap_duration_seconds{map="m"}`, `redisync_map_changes_applied_total{map="m"}`,
		`redisync_map_snapshots_total{map="m"}`, `redisync_map_resnapshots_total{map="m"}`, `redisync_map_digest_match{map="m"}`,
		`redisync_map_writes_total{map="m",result="ok"}`, `redisync_channel_head_seq{channel="c"}`,
		"redisync_redis_rtt_seconds_count", `redisync_redis_rtt_seconds_bucket{le="+Inf"}`, "redisync_sse_streams",
		"redisync_sse_events_sent_total", "go_goroutines", "process_start_time_seconds",
	} {
		if _, ok := before[name]; !ok {
			t.Errorf("metric %s is missing", name)
		}
	}
	if before["redisync_redis_up"] != 1 || before[`redisync_map_ready{map="m"}`] != 1 || before["redisync_redis_rtt_seconds_count"] < 1 {
		t.Errorf("up %v, ready %v, rtt count %v", before["redisync_redis_up"], before[`redisync_map_ready{map="m"}`], before["redisync_redis_rtt_seconds_count"])
	}

	s := openSSE(t, n.url+"/v1/channels/c/events")
	const writes, posts = 5, 3
	for i := range writes {
		expect(t, "PUT", do(t, "PUT", fmt.Sprint(n.url, "/v1/maps/m/keys/k", i), strings.NewReader("v")), http.StatusOK)
	}
	for range posts {
		expect(t, "POST", do(t, "POST", n.url+"/v1/channels/c", strings.NewReader("x")), http.StatusOK)
	}
	for range posts {
		s.next(5 * time.Second)
	}
	expect(t, "CAS conflict", do(t, "PUT", n.url+"/v1/maps/m/keys/k0", strings.NewReader("v"), "If-Match", `"999"`), http.StatusPreconditionFailed)
	waitFor(t, 5*time.Second, "the head sampled after the writes", func() bool {
		return scrape(t, n)[`redisync_map_head_seq{map="m"}`] >= writes
	})
	after := scrape(t, n)
	for _, c := range []struct {
		series string
		min    float64
	}{
		{"redisync_messages_published_total", writes + posts},
		{"redisync_messages_delivered_total", writes + posts}, // the replica's changes and the stream's messages
		{`redisync_map_changes_applied_total{map="m"}`, writes},
		{`redisync_map_writes_total{map="m",result="ok"}`, writes},
		{`redisync_map_writes_total{map="m",result="conflict"}`, 1},
		{`redisync_map_keys{map="m"}`, writes},
		{"redisync_sse_events_sent_total", posts},
		{`redisync_http_requests_total{code="200",route="PUT /v1/maps/{map}/keys/{key...}"}`, writes},
		{`redisync_http_requests_total{code="412",route="PUT /v1/maps/{map}/keys/{key...}"}`, 1},
		{`redisync_http_requests_total{code="200",route="POST /v1/channels/{channel}"}`, posts},
	} {
		if got := after[c.series] - before[c.series]; got < c.min {
			t.Errorf("%s moved by %v, want at least %v", c.series, got, c.min)
		}
	}
	if got := after["redisync_sse_streams"]; got != 1 {
		t.Errorf("redisync_sse_streams = %v with one stream open", got)
	}
	if got := after[`redisync_map_applied_seq{map="m"}`]; got != writes {
		t.Errorf("applied seq %v, want %d", got, writes)
	}
	if got := after[`redisync_map_digest_match{map="m"}`]; got != 1 {
		t.Errorf("digest match %v, want 1", got)
	}
}

func TestNodeAuth(t *testing.T) {
	srv := startRedis(t)
	n := startNode(t, srv.URL(), newPrefix(), Config{Maps: []string{"m"}, Channels: []string{"c"}, Token: "s3cret"})
	n.waitReady(t)
	good := []string{"Authorization", "Bearer s3cret"}

	expect(t, "healthz without a token", do(t, "GET", n.url+"/healthz", nil), http.StatusOK)
	if r := expect(t, "dashboard without a token", do(t, "GET", n.url+"/", nil), http.StatusOK); !strings.Contains(r.body, "redisync") {
		t.Errorf("dashboard body %q", r.body)
	}
	expect(t, "dashboard script without a token", do(t, "GET", n.url+"/dashboard/app.js", nil), http.StatusOK)

	for _, path := range []string{"/readyz", "/metrics", "/v1/nodes", "/v1/maps", "/v1/maps/m", "/v1/maps/m/keys/a", "/v1/channels", "/v1/maps/m/watch", "/v1/channels/c/events"} {
		for _, h := range [][]string{
			nil,
			{"Authorization", "Bearer wrong"},
			{"Authorization", "Bearer s3cret-and-more"},
			{"Authorization", "Basic czNjcmV0"},
			{"Authorization", "s3cret"},
		} {
			r := expect(t, fmt.Sprintf("GET %s with %q", path, h), do(t, "GET", n.url+path, nil, h...), http.StatusUnauthorized)
			if r.hdr.Get("WWW-Authenticate") == "" || r.errorText() == "" {
				t.Errorf("GET %s: 401 without WWW-Authenticate or JSON error: %q", path, r.body)
			}
		}
	}
	expect(t, "PUT without a token", do(t, "PUT", n.url+"/v1/maps/m/keys/a", strings.NewReader("x")), http.StatusUnauthorized)
	expect(t, "POST without a token", do(t, "POST", n.url+"/v1/channels/c", strings.NewReader("x")), http.StatusUnauthorized)
	expect(t, "DELETE without a token", do(t, "DELETE", n.url+"/v1/maps/m/keys/a", nil), http.StatusUnauthorized)
	expect(t, "?token= outside a stream", do(t, "GET", n.url+"/v1/maps?token=s3cret", nil), http.StatusUnauthorized)
	expect(t, "a stream with a wrong ?token=", do(t, "GET", n.url+"/v1/maps/m/watch?token=nope", nil), http.StatusUnauthorized)

	expect(t, "PUT with the token", do(t, "PUT", n.url+"/v1/maps/m/keys/a", strings.NewReader("x"), good...), http.StatusOK)
	expect(t, "GET with the token", do(t, "GET", n.url+"/v1/maps/m/keys/a", nil, good...), http.StatusOK)
	expect(t, "bearer is case-insensitive", do(t, "GET", n.url+"/v1/maps", nil, "Authorization", "bearer s3cret"), http.StatusOK)
	expect(t, "metrics with the token", do(t, "GET", n.url+"/metrics", nil, good...), http.StatusOK)
	s := openSSE(t, n.url+"/v1/channels/c/events?token=s3cret")
	expect(t, "POST with the token", do(t, "POST", n.url+"/v1/channels/c", strings.NewReader("x"), good...), http.StatusOK)
	s.next(5 * time.Second)
	openSSE(t, n.url+"/v1/maps/m/watch", good...)
}
