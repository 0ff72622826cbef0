package redisconn

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// URL query parameters read by redisconn; rueidis.ParseURL reads the others.
const (
	paramTLSCA            = "tls_ca"
	paramTLSCert          = "tls_cert"
	paramTLSKey           = "tls_key"
	paramTLSServerName    = "tls_server_name"
	paramSentinelUser     = "sentinel_user"
	paramSentinelPassword = "sentinel_password"
	paramAllowReplica     = "allow_replica"
)

// sentinelRefresh is how often a Sentinel client asks the sentinels which server is the master.
const sentinelRefresh = time.Second

// knownParams are the query parameters a URL may have: ours and those of
// rueidis.ParseURL. Any other is a mistake (a typo would otherwise be
// ignored, a CA file silently not used).
var knownParams = map[string]bool{
	paramTLSCA: true, paramTLSCert: true, paramTLSKey: true, paramTLSServerName: true,
	paramSentinelUser: true, paramSentinelPassword: true, paramAllowReplica: true,
	"addr": true, "master_set": true, "db": true, "skip_verify": true, "protocol": true,
	"client_name": true, "dial_timeout": true, "write_timeout": true, "client_cache": true,
	"max_retries": true,
}

// clientOption turns o into rueidis options; o.Timeout is already set.
func clientOption(o Options) (rueidis.ClientOption, error) {
	if !strings.Contains(o.URL, "://") {
		return rueidis.ClientOption{}, fmt.Errorf("no scheme: write redis://%s (rediss:// for TLS, unix:///path for a socket)", redact(o.URL))
	}
	opt, err := rueidis.ParseURL(o.URL)
	if err != nil {
		var ue *url.Error // repeats the whole URL, password included
		if errors.As(err, &ue) {
			ue.URL = redact(ue.URL)
		}
		return rueidis.ClientOption{}, err
	}
	u, err := url.Parse(o.URL) // cannot fail: ParseURL parsed it
	if err != nil {
		return opt, err
	}
	q := u.Query()
	var unknown []string
	for k := range q {
		if !knownParams[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return opt, fmt.Errorf("unknown URL parameter %s", strings.Join(unknown, ", "))
	}
	param := func(field, name string) string {
		if field != "" {
			return field
		}
		return q.Get(name)
	}

	opt.DisableCache = true
	opt.ClientSetInfo = rueidis.DisableClientSetInfo
	opt.Dialer.Timeout = o.Timeout
	opt.ConnWriteTimeout = o.Timeout

	ca, cert, key := param(o.CAFile, paramTLSCA), param(o.CertFile, paramTLSCert), param(o.KeyFile, paramTLSKey)
	serverName := param(o.ServerName, paramTLSServerName)
	if opt.TLSConfig == nil {
		if ca != "" || cert != "" || key != "" || serverName != "" {
			return opt, fmt.Errorf("TLS settings (%s) need a rediss:// URL, not %s://", tlsSettings(ca, cert, key, serverName), u.Scheme)
		}
	} else if err := loadTLS(opt.TLSConfig, ca, cert, key, serverName); err != nil {
		return opt, err
	}

	sUser, sPass := param(o.SentinelUser, paramSentinelUser), param(o.SentinelPassword, paramSentinelPassword)
	if opt.Sentinel.MasterSet == "" {
		if sUser != "" || sPass != "" {
			return opt, errors.New("sentinel credentials need ?master_set=NAME, the master the sentinels monitor")
		}
	} else {
		opt.Sentinel.Username, opt.Sentinel.Password = sUser, sPass
		opt.Sentinel.Dialer = opt.Dialer
		// Ask the sentinels every second too, rather than wait for +switch-master alone: the
		// sentinel the client listens to may be the failover's leader, which announces it only
		// once every replica is reconfigured, seconds after the promotion, while the old master
		// still takes writes that the failover then loses.
		opt.Sentinel.TopologyRefreshInterval = sentinelRefresh
		if opt.TLSConfig != nil {
			opt.Sentinel.TLSConfig = opt.TLSConfig.Clone()
		}
	}
	return opt, nil
}

// allowReplica returns o.AllowReplica, or the allow_replica parameter of o.URL.
func allowReplica(o Options) (bool, error) {
	if o.AllowReplica {
		return true, nil
	}
	u, err := url.Parse(o.URL)
	if err != nil {
		return false, err
	}
	v := u.Query().Get(paramAllowReplica)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s=%q: want true or false", paramAllowReplica, v)
	}
	return b, nil
}

// tlsSettings names the TLS settings that are set, for a message.
func tlsSettings(ca, cert, key, serverName string) string {
	var set []string
	for _, s := range []struct{ name, v string }{
		{paramTLSCA, ca}, {paramTLSCert, cert}, {paramTLSKey, key}, {paramTLSServerName, serverName},
	} {
		if s.v != "" {
			set = append(set, s.name)
		}
	}
	return strings.Join(set, ", ")
}

// redact hides the passwords of a URL for messages: the one of
// "user:password@" and the sentinel_password parameter.
func redact(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if ok {
		scheme += "://"
	} else {
		scheme, rest = "", u // no scheme: still hide "user:password@"
	}
	if i := strings.Index(rest, paramSentinelPassword+"="); i >= 0 {
		start := i + len(paramSentinelPassword) + 1
		end := strings.IndexAny(rest[start:], "&#")
		if end < 0 {
			end = len(rest) - start
		}
		rest = rest[:start] + "xxxxx" + rest[start+end:]
	}
	at := strings.LastIndex(rest, "@") // the last: a password may hold an unescaped "@" or "/"
	if at < 0 {
		return scheme + rest
	}
	if user, _, hasPass := strings.Cut(rest[:at], ":"); hasPass {
		return scheme + user + ":xxxxx@" + rest[at+1:]
	}
	return scheme + rest
}
