package redistest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CertsServerName is the DNS name, besides 127.0.0.1 and localhost, that the
// server certificates made by NewCerts are valid for.
const CertsServerName = "redis.internal"

// Certs are PEM files of a private certificate authority and of a server
// and a client certificate it signed, made by NewCerts for one test.
type Certs struct {
	// CAFile holds the CA's certificate: clients trust the server with it,
	// and the server trusts clients with it (tls-ca-cert-file).
	CAFile string
	// ServerCertFile and ServerKeyFile are the server's certificate, valid
	// for 127.0.0.1, localhost and CertsServerName, and its private key.
	// Servers show it as their client certificate too, to their master
	// (tls-replication) and to each other (sentinels).
	ServerCertFile, ServerKeyFile string
	// ClientCertFile and ClientKeyFile are a client certificate and its
	// private key, as Redis asks for with tls-auth-clients yes.
	ClientCertFile, ClientKeyFile string
}

// NewCerts makes a private CA, a server certificate and a client
// certificate, valid for a day, and writes them as PEM files into a
// temporary directory of t. It calls t.Fatalf on failure.
func NewCerts(t testing.TB) *Certs {
	t.Helper()
	dir := t.TempDir()
	c := &Certs{
		CAFile:         filepath.Join(dir, "ca.crt"),
		ServerCertFile: filepath.Join(dir, "server.crt"),
		ServerKeyFile:  filepath.Join(dir, "server.key"),
		ClientCertFile: filepath.Join(dir, "client.crt"),
		ClientKeyFile:  filepath.Join(dir, "client.key"),
	}
	now := time.Now()
	caKey, caDER := newCert(t, &x509.Certificate{
		Subject:               pkix.Name{CommonName: "redistest CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}, nil, nil)
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	writePEM(t, c.CAFile, "CERTIFICATE", caDER)

	srvKey, srvDER := newCert(t, &x509.Certificate{
		Subject:   pkix.Name{CommonName: CertsServerName},
		NotBefore: now.Add(-time.Hour),
		NotAfter:  now.Add(24 * time.Hour),
		KeyUsage:  x509.KeyUsageDigitalSignature,
		// A replica or a sentinel shows it as its client certificate too.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{CertsServerName, "localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}, ca, caKey)
	writePEM(t, c.ServerCertFile, "CERTIFICATE", srvDER)
	writeKey(t, c.ServerKeyFile, srvKey)

	cliKey, cliDER := newCert(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "redistest client"},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca, caKey)
	writePEM(t, c.ClientCertFile, "CERTIFICATE", cliDER)
	writeKey(t, c.ClientKeyFile, cliKey)
	return c
}

// ClientConfig returns a TLS configuration that trusts the CA and shows the
// client certificate, for a server at 127.0.0.1. It calls t.Fatalf on
// failure.
func (c *Certs) ClientConfig(t testing.TB) *tls.Config {
	t.Helper()
	cfg, err := c.clientConfig()
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	return cfg
}

func (c *Certs) clientConfig() (*tls.Config, error) {
	pemCA, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemCA)
	cert, err := tls.LoadX509KeyPair(c.ClientCertFile, c.ClientKeyFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		RootCAs:      pool,
		Certificates: []tls.Certificate{cert},
		ServerName:   "127.0.0.1",
		MinVersion:   tls.VersionTLS12,
	}, nil
}

// newCert makes a key and a certificate of it from tmpl, signed by parent
// (self-signed when parent is nil).
func newCert(t testing.TB, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	tmpl.SerialNumber = serial
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	return key, der
}

// writeKey writes key as a PKCS #8 PEM file.
func writeKey(t testing.TB, path string, key *ecdsa.PrivateKey) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	writePEM(t, path, "PRIVATE KEY", der)
}

// writePEM writes der as one PEM block of type typ.
func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatalf("redistest: %v", err)
	}
}
