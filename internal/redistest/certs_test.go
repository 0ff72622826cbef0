package redistest

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestTLS(t *testing.T) {
	certs := NewCerts(t)
	s := Start(t, Options{TLS: certs})
	if want := "rediss://" + s.Addr(); s.URL() != want {
		t.Fatalf("URL() = %q, want %q", s.URL(), want)
	}
	mustDo(t, s, "OK", "SET", "k", "v")
	mustDo(t, s, "[tls-auth-clients yes]", "CONFIG", "GET", "tls-auth-clients")
	c := s.Client(t)
	if got, err := c.Do(context.Background(), c.B().Get().Key("k").Build()).ToString(); err != nil || got != "v" {
		t.Fatalf("GET through Client = %q, %v", got, err)
	}

	// The port speaks TLS only, and only to clients with a certificate.
	if _, err := (&Server{addr: s.Addr()}).do(time.Second, "PING"); err == nil {
		t.Error("plain PING on the TLS port answered")
	}
	noCert := certs.ClientConfig(t)
	noCert.Certificates = nil
	if _, err := (&Server{addr: s.Addr(), tls: noCert}).do(time.Second, "PING"); err == nil {
		t.Error("PING without a client certificate answered")
	}
	other := NewCerts(t).ClientConfig(t)
	_, err := (&Server{addr: s.Addr(), tls: other}).do(time.Second, "PING")
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("PING trusting another CA: err = %v, want a certificate error", err)
	}
	byName := certs.ClientConfig(t)
	byName.ServerName = CertsServerName
	mustDo(t, &Server{addr: s.Addr(), tls: byName}, "PONG", "PING")

	s.Restart() // waits for a PING over TLS
	mustDo(t, s, "PONG", "PING")
}
