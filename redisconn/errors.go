package redisconn

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
)

// Error is a failure to open a client: Addr names what was reached for (the URL when it
// did not parse) and Err the cause.
type Error struct {
	Addr string
	Err  error
}

func (e *Error) Error() string {
	where := "redis " + e.Addr + ": "
	// A dial to another address than the ones named (the master the sentinels named, a node
	// of a cluster) failed: say which.
	var oe *net.OpError
	if errors.As(e.Err, &oe) && oe.Op == "dial" && oe.Addr != nil && !strings.Contains(","+e.Addr+",", ","+oe.Addr.String()+",") {
		where += "dialing " + oe.Addr.String() + ": "
	}
	return where + explain(e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// noPasswordError is NOAUTH from a server that was given no password.
type noPasswordError struct{ err error }

func (e *noPasswordError) Error() string {
	return "authentication failed: the server wants a password and the URL gives none " +
		"(redis://:PASSWORD@HOST:PORT, or redis://USER:PASSWORD@HOST:PORT for an ACL user)"
}

func (e *noPasswordError) Unwrap() error { return e.err }

// sentinelAuthError is an authentication failure of the sentinels, as opposed to the data
// servers they name.
type sentinelAuthError struct {
	err      error
	password bool // a sentinel password was given
}

func (e *sentinelAuthError) Error() string {
	if !e.password {
		return "authentication to the sentinels failed: they want a password and none was given " +
			"(add sentinel_password=PASSWORD, and sentinel_user=USER for an ACL user, to the URL)"
	}
	return "authentication to the sentinels failed (check sentinel_user and sentinel_password): " + e.err.Error()
}

func (e *sentinelAuthError) Unwrap() error { return e.err }

// closedError is a connection the server closed before answering: a TLS port does so to
// plain RESP, and a server that wants a client certificate to a TLS client without one.
type closedError struct {
	err        error
	tls        bool // the connection was TLS
	clientCert bool // and showed a client certificate
}

func (e *closedError) Error() string {
	switch {
	case e.tls && e.clientCert:
		return "the server closed the TLS connection without answering; it may not accept the client certificate (" + e.err.Error() + ")"
	case e.tls:
		return "the server closed the TLS connection without answering; it may want a client certificate (tls_cert and tls_key) (" + e.err.Error() + ")"
	}
	return "the server closed the connection without answering; if it expects TLS, use rediss:// (" + e.err.Error() + ")"
}

func (e *closedError) Unwrap() error { return e.err }

// explain turns the usual causes into words a user can act on, keeping Redis's own text.
func explain(err error) string {
	msg := err.Error()
	var ne net.Error
	var (
		noPass   *noPasswordError
		sentAuth *sentinelAuthError
		notTLS   *notTLSError
		closed   *closedError
	)
	switch {
	case errors.As(err, &noPass), errors.As(err, &sentAuth), errors.As(err, &notTLS), errors.As(err, &closed):
		return msg
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (is redis-server running on that address?)"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "no answer in time (" + msg + ")"
	case strings.Contains(msg, "unknown message type"):
		// rueidis's words for a reply that is no RESP at all: another kind of server.
		return "the server does not speak the Redis protocol; is that the address of a Redis? (" + msg + ")"
	case isAuthError(msg):
		return "authentication failed: " + msg
	case strings.HasPrefix(msg, "NOPERM"):
		if strings.Contains(msg, "cluster|slots") || strings.Contains(msg, "cluster|shards") {
			return "permission denied by the server's ACL: a cluster client needs +cluster|slots (+cluster|shards on Redis 8): " + msg
		}
		return "permission denied by the server's ACL: " + msg
	}
	return msg
}

// isAuthError reports whether msg is Redis refusing credentials, or asking for them.
func isAuthError(msg string) bool {
	return strings.HasPrefix(msg, "WRONGPASS") || strings.HasPrefix(msg, "NOAUTH") ||
		strings.Contains(msg, "AUTH") && strings.Contains(msg, "password")
}

// isClosed reports whether err is the peer closing the connection.
func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}
