package redisconn_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/redisync/redisync/internal/redistest"
	"github.com/redisync/redisync/redisconn"
)

// sentinelURL returns redis://[:dataPass@]S1?addr=S2&addr=S3&master_set=NAME&extra…
func sentinelURL(d *redistest.Sentinel, scheme, dataPass string, extra ...string) string {
	u := scheme + "://"
	if dataPass != "" {
		u += ":" + url.QueryEscape(dataPass) + "@"
	}
	addrs := d.Addrs()
	u += addrs[0] + "?addr=" + addrs[1] + "&addr=" + addrs[2] + "&master_set=" + d.MasterName()
	for _, e := range extra {
		u += "&" + e
	}
	return u
}

// writeThrough sets key to value through c and checks that master has it.
func writeThrough(t *testing.T, c rueidis.Client, master *redistest.Server, key, value string) {
	t.Helper()
	ctx := context.Background()
	if err := c.Do(ctx, c.B().Set().Key(key).Value(value).Build()).Error(); err != nil {
		t.Fatalf("SET %s: %v", key, err)
	}
	if got, err := master.Do("GET", key); err != nil || got != value {
		t.Fatalf("GET %s on the master %s = %q, %v; want %q", key, master.Addr(), got, err, value)
	}
}

func TestOpenSentinelAuth(t *testing.T) {
	for _, tc := range []struct {
		name       string
		user       string // sentinel ACL user; "" for requirepass
		userParams []string
	}{
		{name: "requirepass"},
		{name: "ACL user", user: "watcher", userParams: []string{"sentinel_user=watcher"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // mostly waits on the deployment's timeouts
			const dataPass, sentPass = "data-pw", "sentinel-pw"
			d := redistest.StartSentinel(t, redistest.SentinelOptions{
				Password: dataPass, SentinelUser: tc.user, SentinelPassword: sentPass,
			})
			ctx := context.Background()
			params := append([]string{"sentinel_password=" + sentPass}, tc.userParams...)
			// Subtests do not call d's methods: d reports failures on this test.
			master := d.Master()

			t.Run("URL parameters", func(t *testing.T) {
				c, err := redisconn.Open(ctx, redisconn.Options{URL: sentinelURL(d, "redis", dataPass, params...), Timeout: 2 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				writeThrough(t, c, master, "params", "1")
			})
			t.Run("Options fields", func(t *testing.T) {
				c, err := redisconn.Open(ctx, redisconn.Options{
					URL:          sentinelURL(d, "redis", dataPass, "sentinel_password=wrong"),
					SentinelUser: tc.user, SentinelPassword: sentPass, Timeout: 2 * time.Second,
				})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				writeThrough(t, c, master, "fields", "1")
			})

			for _, bad := range []struct {
				name, url string
				want      []string
			}{
				{"no sentinel password", sentinelURL(d, "redis", dataPass, tc.userParams...),
					[]string{"authentication to the sentinels failed", "add sentinel_password=PASSWORD"}},
				{"wrong sentinel password", sentinelURL(d, "redis", dataPass, append([]string{"sentinel_password=nope"}, tc.userParams...)...),
					[]string{"authentication to the sentinels failed (check sentinel_user and sentinel_password)", "WRONGPASS"}},
				{"data password for the sentinels", sentinelURL(d, "redis", dataPass, append([]string{"sentinel_password=" + dataPass}, tc.userParams...)...),
					[]string{"authentication to the sentinels failed", "WRONGPASS"}},
				{"no data password", sentinelURL(d, "redis", "", params...),
					[]string{"the server wants a password and the URL gives none"}},
				{"sentinel password for the data", sentinelURL(d, "redis", sentPass, params...),
					[]string{"authentication failed: WRONGPASS"}},
			} {
				t.Run(bad.name, func(t *testing.T) {
					msg, _ := openErr(t, ctx, redisconn.Options{URL: bad.url, Timeout: 2 * time.Second})
					for _, want := range append(bad.want, d.Addrs()[0]) {
						if !strings.Contains(msg, want) {
							t.Errorf("message %q does not contain %q", msg, want)
						}
					}
					for _, pw := range []string{dataPass, sentPass, "nope"} {
						if strings.Contains(msg, pw) {
							t.Errorf("message %q shows a password", msg)
						}
					}
				})
			}

			t.Run("a sentinel as a data server", func(t *testing.T) {
				u := "redis://" + url.UserPassword(tc.user, sentPass).String() + "@" + d.Addrs()[0]
				msg, _ := openErr(t, ctx, redisconn.Options{URL: u, Timeout: 2 * time.Second})
				if !strings.Contains(msg, "is a Redis Sentinel, not a data server: name the master it monitors with ?master_set=NAME") {
					t.Errorf("message %q does not say to add master_set", msg)
				}
			})

			// Failover: the client learns the new master from the sentinels (with their
			// credentials).
			c, err := redisconn.Open(ctx, redisconn.Options{URL: sentinelURL(d, "redis", dataPass, params...), Timeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if redisconn.IsCluster(c) {
				t.Error("IsCluster of a Sentinel client = true")
			}
			writeThrough(t, c, master, "before", "1")
			nm := d.Failover()
			err = eventually(5*time.Second, func() error {
				return c.Do(ctx, c.B().Set().Key("after").Value("2").Build()).Error()
			})
			if err != nil {
				t.Fatalf("SET after the failover: %v", err)
			}
			if got, err := nm.Do("GET", "after"); err != nil || got != "2" {
				t.Fatalf("GET after on the new master %s = %q, %v", nm.Addr(), got, err)
			}
		})
	}
}

func TestOpenSentinelTLS(t *testing.T) {
	t.Parallel() // mostly waits on the deployment's timeouts
	certs := redistest.NewCerts(t)
	d := redistest.StartSentinel(t, redistest.SentinelOptions{TLS: certs})
	ctx := context.Background()
	files := []string{
		"tls_ca=" + url.QueryEscape(certs.CAFile),
		"tls_cert=" + url.QueryEscape(certs.ClientCertFile),
		"tls_key=" + url.QueryEscape(certs.ClientKeyFile),
	}
	c, err := redisconn.Open(ctx, redisconn.Options{URL: sentinelURL(d, "rediss", "", files...), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("Open over TLS: %v", err)
	}
	defer c.Close()
	writeThrough(t, c, d.Master(), "k", "v")

	// tls_server_name holds for the sentinels and the master.
	named, err := redisconn.Open(ctx, redisconn.Options{
		URL:     sentinelURL(d, "rediss", "", append(files, "tls_server_name="+redistest.CertsServerName)...),
		Timeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatalf("Open with tls_server_name=%s: %v", redistest.CertsServerName, err)
	}
	named.Close()
	msg, _ := openErr(t, ctx, redisconn.Options{URL: sentinelURL(d, "rediss", "", append(files, "tls_server_name=wrong.internal")...), Timeout: time.Second})
	if !strings.Contains(msg, "not wrong.internal") {
		t.Errorf("message %q does not say the certificate is not valid for wrong.internal", msg)
	}

	// The sentinels speak TLS only: a client that spoke plain TCP to them fails.
	msg, _ = openErr(t, ctx, redisconn.Options{URL: sentinelURL(d, "redis", ""), Timeout: time.Second})
	if !strings.Contains(msg, "expects TLS") {
		t.Errorf("message %q does not say the sentinels expect TLS", msg)
	}
}

// eventually retries op until it succeeds or timeout passes, and returns the last error.
func eventually(timeout time.Duration, op func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := op()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func TestOpenSentinelNoAnswer(t *testing.T) {
	// Three sentinels that accept connections and never answer: Open gives up after Timeout,
	// not after Timeout for each of them.
	var addrs []string
	for range 3 {
		addrs = append(addrs, newSilentListener(t).addr())
	}
	u := "redis://" + addrs[0] + "?addr=" + addrs[1] + "&addr=" + addrs[2] + "&master_set=m"
	msg, err := openErr(t, context.Background(), redisconn.Options{URL: u, Timeout: time.Second})
	if !strings.Contains(msg, "no answer in time") || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %q does not say no answer came", msg)
	}
}

// Sentinels that name a master that refuses connections (every data server is down, so no
// failover can replace it): the error names that master, not only the sentinels reached.
func TestOpenSentinelDeadMaster(t *testing.T) {
	d := redistest.StartSentinel(t, redistest.SentinelOptions{})
	master := d.Master().Addr()
	for _, s := range d.Servers() {
		s.Kill()
	}
	msg, err := openErr(t, context.Background(), redisconn.Options{URL: d.URL(), Timeout: 2 * time.Second})
	if !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(msg, "dialing "+master+": connection refused") {
		t.Errorf("error %q: want the master %s named, its connection refused", msg, master)
	}
}
