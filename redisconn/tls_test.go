package redisconn_test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redisync/redisync/internal/redistest"
	"github.com/redisync/redisync/redisconn"
)

// tlsURL returns rediss://addr with the TLS parameters of certs and extra ones.
func tlsURL(addr string, certs *redistest.Certs, extra ...string) string {
	q := []string{
		"tls_ca=" + url.QueryEscape(certs.CAFile),
		"tls_cert=" + url.QueryEscape(certs.ClientCertFile),
		"tls_key=" + url.QueryEscape(certs.ClientKeyFile),
	}
	return "rediss://" + addr + "?" + strings.Join(append(q, extra...), "&")
}

func TestOpenTLS(t *testing.T) {
	certs := redistest.NewCerts(t)
	srv := redistest.Start(t, redistest.Options{TLS: certs})
	addr := srv.Addr()
	ctx := context.Background()

	for _, tc := range []struct {
		name string
		o    redisconn.Options
	}{
		{"URL parameters", redisconn.Options{URL: tlsURL(addr, certs)}},
		{"Options fields", redisconn.Options{URL: "rediss://" + addr,
			CAFile: certs.CAFile, CertFile: certs.ClientCertFile, KeyFile: certs.ClientKeyFile}},
		{"fields win over parameters", redisconn.Options{
			URL:    "rediss://" + addr + "?tls_ca=/nonexistent/ca.crt&tls_cert=/nonexistent/c.crt&tls_key=/nonexistent/c.key",
			CAFile: certs.CAFile, CertFile: certs.ClientCertFile, KeyFile: certs.ClientKeyFile}},
		{"server name parameter", redisconn.Options{URL: tlsURL(addr, certs, "tls_server_name="+redistest.CertsServerName)}},
		{"server name field", redisconn.Options{URL: tlsURL(addr, certs, "tls_server_name=wrong.internal"), ServerName: redistest.CertsServerName}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Timeout = 2 * time.Second
			c, err := redisconn.Open(ctx, tc.o)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer c.Close()
			if err := c.Do(ctx, c.B().Set().Key("k").Value(tc.name).Build()).Error(); err != nil {
				t.Fatalf("SET over TLS: %v", err)
			}
			if got, err := srv.Do("GET", "k"); err != nil || got != tc.name {
				t.Fatalf("GET k on the server = %q, %v; want %q", got, err, tc.name)
			}
		})
	}

	other := redistest.NewCerts(t)
	for _, tc := range []struct {
		name string
		o    redisconn.Options
		want []string
	}{
		{"wrong server name", redisconn.Options{URL: tlsURL(addr, certs, "tls_server_name=wrong.internal")},
			[]string{"certificate", "wrong.internal"}},
		{"CA of another", redisconn.Options{URL: tlsURL(addr, certs), CAFile: other.CAFile},
			[]string{"certificate signed by unknown authority"}},
		{"no client certificate", redisconn.Options{URL: "rediss://" + addr + "?tls_ca=" + url.QueryEscape(certs.CAFile)},
			[]string{"client certificate (tls_cert and tls_key)"}},
		// The server's alert, or a reset when it closes before the alert is read.
		{"client certificate of another CA", redisconn.Options{URL: tlsURL(addr, certs),
			CertFile: other.ClientCertFile, KeyFile: other.ClientKeyFile},
			[]string{"unknown certificate authority|may not accept the client certificate"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Timeout = 2 * time.Second
			msg, _ := openErr(t, ctx, tc.o)
			for _, want := range append(tc.want, addr) {
				if !containsAny(msg, strings.Split(want, "|")...) {
					t.Errorf("message %q does not contain %q", msg, want)
				}
			}
		})
	}
}

func TestOpenTLSBadFiles(t *testing.T) {
	certs := redistest.NewCerts(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	missing := filepath.Join(dir, "missing.crt")
	garbage := write("garbage.pem", "not a certificate\n")
	badDER := write("bad-der.crt", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
	addr := freeAddr(t) // nothing is dialed: the files are read first

	for _, tc := range []struct {
		name          string
		ca, cert, key string
		want          []string
	}{
		{name: "missing CA", ca: missing, want: []string{"CA file", missing, "no such file"}},
		{name: "CA not PEM", ca: garbage, want: []string{"CA file " + garbage, "no PEM certificate"}},
		{name: "CA bad certificate", ca: badDER, want: []string{"CA file " + badDER, "bad certificate"}},
		{name: "CA is a key", ca: certs.ClientKeyFile, want: []string{"CA file " + certs.ClientKeyFile, "no PEM certificate"}},
		{name: "missing certificate", cert: missing, key: certs.ClientKeyFile, want: []string{"client certificate", missing, "no such file"}},
		{name: "missing key", cert: certs.ClientCertFile, key: missing, want: []string{"client key", missing, "no such file"}},
		{name: "certificate not PEM", cert: garbage, key: certs.ClientKeyFile, want: []string{"client certificate " + garbage, "no PEM certificate"}},
		{name: "key not PEM", cert: certs.ClientCertFile, key: garbage, want: []string{"client key " + garbage, "no PEM private key"}},
		{name: "key is a certificate", cert: certs.ClientCertFile, key: certs.ClientCertFile, want: []string{"client key " + certs.ClientCertFile, "no PEM private key"}},
		{name: "key of another certificate", cert: certs.ClientCertFile, key: certs.ServerKeyFile,
			want: []string{certs.ClientCertFile, certs.ServerKeyFile, "private key does not match public key"}},
		{name: "certificate without key", cert: certs.ClientCertFile, want: []string{certs.ClientCertFile, "without its key"}},
		{name: "key without certificate", key: certs.ClientKeyFile, want: []string{certs.ClientKeyFile, "without its certificate"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// As parameters and as fields: the same message.
			q := url.Values{}
			for k, v := range map[string]string{"tls_ca": tc.ca, "tls_cert": tc.cert, "tls_key": tc.key} {
				if v != "" {
					q.Set(k, v)
				}
			}
			for _, o := range []redisconn.Options{
				{URL: "rediss://" + addr + "?" + q.Encode()},
				{URL: "rediss://" + addr, CAFile: tc.ca, CertFile: tc.cert, KeyFile: tc.key},
			} {
				o.Timeout = 5 * time.Second
				start := time.Now()
				msg, _ := openErr(t, context.Background(), o)
				if elapsed := time.Since(start); elapsed > 500*time.Millisecond {
					t.Errorf("Open took %v to report a bad file", elapsed)
				}
				for _, want := range append(tc.want, addr) {
					if !strings.Contains(msg, want) {
						t.Errorf("message %q does not contain %q", msg, want)
					}
				}
			}
		})
	}

	t.Run("TLS settings with redis://", func(t *testing.T) {
		for _, o := range []redisconn.Options{
			{URL: "redis://" + addr + "?tls_ca=" + url.QueryEscape(certs.CAFile)},
			{URL: "redis://" + addr, CertFile: certs.ClientCertFile, KeyFile: certs.ClientKeyFile},
			{URL: "redis://" + addr, ServerName: "x"},
		} {
			o.Timeout = time.Second
			msg, _ := openErr(t, context.Background(), o)
			if !strings.Contains(msg, "need a rediss:// URL") {
				t.Errorf("message %q does not say to use rediss://", msg)
			}
		}
	})
}

func TestOpenTLSMismatch(t *testing.T) {
	certs := redistest.NewCerts(t)
	tlsSrv := redistest.Start(t, redistest.Options{TLS: certs})
	plain := redistest.Start(t, redistest.Options{})
	ctx := context.Background()

	t.Run("rediss to a plain server", func(t *testing.T) {
		msg, _ := openErr(t, ctx, redisconn.Options{URL: tlsURL(plain.Addr(), certs), Timeout: time.Second})
		for _, want := range []string{plain.Addr(), "may not speak TLS", "redis://"} {
			if !strings.Contains(msg, want) {
				t.Errorf("message %q does not contain %q", msg, want)
			}
		}
	})
	t.Run("redis to a TLS server", func(t *testing.T) {
		msg, _ := openErr(t, ctx, redisconn.Options{URL: "redis://" + tlsSrv.Addr(), Timeout: time.Second})
		for _, want := range []string{tlsSrv.Addr(), "expects TLS", "rediss://"} {
			if !strings.Contains(msg, want) {
				t.Errorf("message %q does not contain %q", msg, want)
			}
		}
	})
}

// containsAny reports whether s contains one of subs.
func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
