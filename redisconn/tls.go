package redisconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
)

// loadTLS adds to cfg the CA of caFile (instead of the system's roots), the
// client certificate of certFile and keyFile, and serverName. An empty
// argument changes nothing. An error names the file and what is wrong with
// it.
func loadTLS(cfg *tls.Config, caFile, certFile, keyFile, serverName string) error {
	if caFile != "" {
		pool, err := loadCA(caFile)
		if err != nil {
			return err
		}
		cfg.RootCAs = pool
	}
	switch {
	case certFile != "" && keyFile != "":
		cert, err := loadKeyPair(certFile, keyFile)
		if err != nil {
			return err
		}
		cfg.Certificates = []tls.Certificate{cert}
	case certFile != "":
		return fmt.Errorf("client certificate %s given without its key (tls_key, KeyFile)", certFile)
	case keyFile != "":
		return fmt.Errorf("client key %s given without its certificate (tls_cert, CertFile)", keyFile)
	}
	if serverName != "" {
		cfg.ServerName = serverName
	}
	return nil
}

// loadCA reads the PEM certificates of path into a pool.
func loadCA(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("CA file %s: bad certificate: %w", path, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("CA file %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// loadKeyPair reads a client certificate and its private key.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("client certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("client key: %w", err)
	}
	if !hasPEM(certPEM, func(typ string) bool { return typ == "CERTIFICATE" }) {
		return tls.Certificate{}, fmt.Errorf("client certificate %s: no PEM certificate in it", certFile)
	}
	if !hasPEM(keyPEM, func(typ string) bool { return strings.HasSuffix(typ, "PRIVATE KEY") }) {
		return tls.Certificate{}, fmt.Errorf("client key %s: no PEM private key in it", keyFile)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("client certificate %s and key %s: %w", certFile, keyFile, err)
	}
	return cert, nil
}

// hasPEM reports whether data holds a PEM block whose type is wanted.
func hasPEM(data []byte, wanted func(typ string) bool) bool {
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if wanted(block.Type) {
			return true
		}
	}
	return false
}

// notTLSError is a TLS handshake that failed the way it does when the
// server speaks plain RESP: it answered something that is not TLS, or
// nothing at all (Redis waits for the end of a command line that never
// comes).
type notTLSError struct{ err error }

func (e *notTLSError) Error() string {
	return "TLS handshake failed, the server may not speak TLS (for a plain connection use redis://): " + e.err.Error()
}

func (e *notTLSError) Unwrap() error { return e.err }

// dialTLS dials dst and runs the TLS handshake within d.Timeout, telling a
// server that does not speak TLS from other failures.
func dialTLS(ctx context.Context, dst string, d *net.Dialer, tc *tls.Config) (net.Conn, error) {
	raw, err := d.DialContext(ctx, "tcp", dst)
	if err != nil {
		return nil, err
	}
	if d.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.Timeout)
		defer cancel()
	}
	if tc.ServerName == "" {
		tc = tc.Clone()
		tc.ServerName, _, _ = net.SplitHostPort(dst)
	}
	conn := tls.Client(raw, tc)
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		var rh tls.RecordHeaderError
		var ne net.Error
		if errors.As(err, &rh) || (errors.As(err, &ne) && ne.Timeout()) || errors.Is(err, context.DeadlineExceeded) {
			return nil, &notTLSError{err}
		}
		return nil, err
	}
	return conn, nil
}
