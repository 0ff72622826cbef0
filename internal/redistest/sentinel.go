package redistest

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Settings of the deployments started by StartSentinel.
const (
	// DefaultMasterName is the name the sentinels monitor the master under
	// when SentinelOptions.MasterName is empty.
	DefaultMasterName = "mymaster"
	// SentinelDownAfter is the sentinels' down-after-milliseconds: a master
	// that answers no PING for that long is subjectively down.
	SentinelDownAfter = time.Second
	// SentinelFailoverTimeout is the sentinels' failover-timeout. A failover
	// that stalls is abandoned after it, and the same master is not failed
	// over again before twice that time.
	SentinelFailoverTimeout = 3 * time.Second
	// FailoverWait bounds how long StartSentinel, StartCluster and the
	// failover methods wait for a deployment to settle.
	FailoverWait = 30 * time.Second
)

// SentinelOptions configures a deployment started by StartSentinel. The zero
// value starts data servers without persistence and without passwords,
// watched by sentinels without passwords under DefaultMasterName.
type SentinelOptions struct {
	// MasterName is the name the sentinels monitor the master under (the
	// master_set of the URL). Default DefaultMasterName.
	MasterName string
	// AppendOnly is Options.AppendOnly of the master and the replicas.
	// Default: off.
	AppendOnly bool
	// Args are extra redis-server arguments of the master and the replicas,
	// e.g. {"--min-replicas-to-write", "1"}. Default: none.
	Args []string
	// Password is the requirepass (and masterauth) of the master and the
	// replicas; the sentinels are told it with "sentinel auth-pass". Default:
	// none.
	Password string
	// SentinelPassword is the password of the sentinels: their requirepass,
	// or SentinelUser's password. The sentinels authenticate to each other
	// with it. Default: none, the sentinels are open.
	SentinelPassword string
	// SentinelUser, with SentinelPassword, is an ACL user created on each
	// sentinel with every permission; the default user is then disabled, so
	// only SentinelUser gets in. Default: none, the password is requirepass.
	SentinelUser string
	// TLS, when set, makes every process speak TLS only, as Options.TLS
	// does, and replicate and watch over TLS (tls-replication yes). Default:
	// nil, plain TCP.
	TLS *Certs
}

// Sentinel is a Sentinel deployment owned by a test: one master, two
// replicas and three sentinels (quorum 2), each a process on free loopback
// ports. The master changes with failovers; Master asks the sentinels which
// server it is. Its methods call t.Fatalf and must be called from the
// goroutine running the test.
type Sentinel struct {
	tb        testing.TB
	opts      SentinelOptions
	data      []*Server // the master at the start, then the two replicas
	sentinels []*Server
}

// StartSentinel starts a master, two replicas of it and three sentinels
// monitoring it with quorum 2, down-after-milliseconds SentinelDownAfter and
// failover-timeout SentinelFailoverTimeout, so that a failover completes in a
// few seconds. It returns once both replicas are in sync and every sentinel
// knows both replicas and the two other sentinels. The data servers run with
// repl-diskless-sync-delay 0, so a replica syncs at once. It calls t.Fatalf on
// failure; t.Cleanup kills every process.
func StartSentinel(t testing.TB, opts SentinelOptions) *Sentinel {
	t.Helper()
	skipShort(t)
	if opts.MasterName == "" {
		opts.MasterName = DefaultMasterName
	}
	if opts.SentinelUser != "" && opts.SentinelPassword == "" {
		t.Fatalf("redistest: SentinelOptions.SentinelUser needs a SentinelPassword")
	}
	d := &Sentinel{tb: t, opts: opts}

	base := []string{"--repl-diskless-sync-delay", "0"}
	if opts.Password != "" {
		base = append(base, "--masterauth", opts.Password)
	}
	if opts.TLS != nil {
		base = append(base, "--tls-replication", "yes")
	}
	dataOpts := func(extra ...string) Options {
		args := append(append(append([]string(nil), base...), extra...), opts.Args...)
		return Options{AppendOnly: opts.AppendOnly, Password: opts.Password, Args: args, TLS: opts.TLS}
	}
	master := Start(t, dataOpts())
	d.data = append(d.data, master)
	for range 2 {
		d.data = append(d.data, Start(t, dataOpts("--replicaof", "127.0.0.1", strconv.Itoa(master.port))))
	}
	waitFor(t, FailoverWait, "replicas in sync with the master", func() (bool, string) {
		return replicasOnline(master, 2)
	})

	for range 3 {
		sn := newServer(t, Options{Password: opts.SentinelPassword, TLS: opts.TLS})
		sn.user = opts.SentinelUser
		sn.sentinel = filepath.Join(sn.dir, "sentinel.conf")
		if err := os.WriteFile(sn.sentinel, []byte(d.sentinelConfig(master)), 0o600); err != nil {
			t.Fatalf("redistest: %v", err)
		}
		if err := sn.start(); err != nil {
			t.Fatalf("%v", err)
		}
		d.sentinels = append(d.sentinels, sn)
	}
	waitFor(t, FailoverWait, "sentinels know the replicas and each other", func() (bool, string) {
		for _, sn := range d.sentinels {
			if ok, state := d.sentinelReady(sn, master, 2, 2); !ok {
				return false, state
			}
		}
		return true, ""
	})
	return d
}

// sentinelConfig returns the config file of a sentinel monitoring master.
func (d *Sentinel) sentinelConfig(master *Server) string {
	o := d.opts
	var b strings.Builder
	fmt.Fprintf(&b, "sentinel monitor %s 127.0.0.1 %d 2\n", o.MasterName, master.port)
	fmt.Fprintf(&b, "sentinel down-after-milliseconds %s %d\n", o.MasterName, SentinelDownAfter.Milliseconds())
	fmt.Fprintf(&b, "sentinel failover-timeout %s %d\n", o.MasterName, SentinelFailoverTimeout.Milliseconds())
	if o.Password != "" {
		fmt.Fprintf(&b, "sentinel auth-pass %s %s\n", o.MasterName, confQuote(o.Password))
	}
	if o.TLS != nil {
		fmt.Fprintf(&b, "tls-replication yes\n") // to the servers and the other sentinels
	}
	switch {
	case o.SentinelUser != "":
		fmt.Fprintf(&b, "user default off\n")
		fmt.Fprintf(&b, "user %s on %s ~* &* +@all\n", confQuote(o.SentinelUser), confQuote(">"+o.SentinelPassword))
		fmt.Fprintf(&b, "sentinel sentinel-user %s\n", confQuote(o.SentinelUser))
		fmt.Fprintf(&b, "sentinel sentinel-pass %s\n", confQuote(o.SentinelPassword))
	case o.SentinelPassword != "":
		fmt.Fprintf(&b, "requirepass %s\n", confQuote(o.SentinelPassword))
		fmt.Fprintf(&b, "sentinel sentinel-pass %s\n", confQuote(o.SentinelPassword))
	}
	return b.String()
}

// confQuote quotes v as one argument of a Redis config file line.
func confQuote(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}

// sentinelReady reports whether sn sees master as a master that is up, with
// replicas replicas linked to it and others other sentinels.
func (d *Sentinel) sentinelReady(sn, master *Server, replicas, others int) (bool, string) {
	v, err := sn.doValue(pollTimeout, "SENTINEL", "MASTER", d.opts.MasterName)
	if err != nil {
		return false, fmt.Sprintf("sentinel %s: %v", sn.addr, err)
	}
	m := pairs(v)
	if m["port"] != strconv.Itoa(master.port) || m["flags"] != "master" || m["num-other-sentinels"] != strconv.Itoa(others) {
		return false, fmt.Sprintf("sentinel %s: master %s", sn.addr, format(v))
	}
	v, err = sn.doValue(pollTimeout, "SENTINEL", "REPLICAS", d.opts.MasterName)
	if err != nil {
		return false, fmt.Sprintf("sentinel %s: %v", sn.addr, err)
	}
	list, _ := v.([]any)
	good := 0
	for _, r := range list {
		if m := pairs(r); m["flags"] == "slave" && m["master-link-status"] == "ok" && m["master-port"] == strconv.Itoa(master.port) {
			good++
		}
	}
	if good < replicas {
		return false, fmt.Sprintf("sentinel %s: replicas %s", sn.addr, format(v))
	}
	return true, ""
}

// replicasOnline reports whether master has at least n replicas in sync.
func replicasOnline(master *Server, n int) (bool, string) {
	info, err := master.info("replication")
	if err != nil {
		return false, fmt.Sprintf("%s: %v", master.addr, err)
	}
	online := 0
	for i := range 16 {
		if strings.Contains(info["slave"+strconv.Itoa(i)], "state=online") {
			online++
		}
	}
	if online < n {
		return false, fmt.Sprintf("%s: %d replicas online, want %d: %v", master.addr, online, n, info)
	}
	return true, ""
}

// MasterName returns the name the sentinels monitor the master under.
func (d *Sentinel) MasterName() string { return d.opts.MasterName }

// Addrs returns the addresses of the three sentinels.
func (d *Sentinel) Addrs() []string {
	addrs := make([]string, len(d.sentinels))
	for i, sn := range d.sentinels {
		addrs[i] = sn.addr
	}
	return addrs
}

// URL returns the deployment as a URL for redisconn.Open:
// redis://[:PASSWORD@]SENTINEL1?addr=SENTINEL2&addr=SENTINEL3&master_set=NAME,
// followed by &sentinel_user=…&sentinel_password=… when the sentinels want a
// password; rediss:// with TLS, and no certificate named. rueidis.ParseURL
// understands it all but the sentinel_ parameters, which are redisconn's.
func (d *Sentinel) URL() string {
	var b strings.Builder
	if d.opts.TLS != nil {
		b.WriteString("rediss://")
	} else {
		b.WriteString("redis://")
	}
	if d.opts.Password != "" {
		b.WriteString(url.UserPassword("", d.opts.Password).String() + "@")
	}
	b.WriteString(d.sentinels[0].addr + "?")
	for _, sn := range d.sentinels[1:] {
		b.WriteString("addr=" + sn.addr + "&")
	}
	b.WriteString("master_set=" + url.QueryEscape(d.opts.MasterName))
	if d.opts.SentinelUser != "" {
		b.WriteString("&sentinel_user=" + url.QueryEscape(d.opts.SentinelUser))
	}
	if d.opts.SentinelPassword != "" {
		b.WriteString("&sentinel_password=" + url.QueryEscape(d.opts.SentinelPassword))
	}
	return b.String()
}

// Sentinels returns the three sentinel processes. Their Do authenticates with
// SentinelOptions.SentinelUser and SentinelPassword.
func (d *Sentinel) Sentinels() []*Server { return append([]*Server(nil), d.sentinels...) }

// Servers returns the three data servers, the master at the start first.
func (d *Sentinel) Servers() []*Server { return append([]*Server(nil), d.data...) }

// Master returns the data server the first sentinel that answers names as
// the master. After Failover or WaitFailover every sentinel agrees.
func (d *Sentinel) Master() *Server {
	d.tb.Helper()
	var errs []string
	for _, sn := range d.sentinels {
		if !sn.up() {
			continue
		}
		addr, err := d.masterAddr(sn)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if srv := d.server(addr); srv != nil {
			return srv
		}
		d.tb.Fatalf("redistest: sentinel %s names %s as the master, which is none of our servers", sn.addr, addr)
	}
	d.tb.Fatalf("redistest: no sentinel names the master: %s", strings.Join(errs, "; "))
	return nil
}

// Replicas returns the data servers other than Master.
func (d *Sentinel) Replicas() []*Server {
	d.tb.Helper()
	m := d.Master()
	var rs []*Server
	for _, srv := range d.data {
		if srv != m {
			rs = append(rs, srv)
		}
	}
	return rs
}

// StallReplicas makes the replicas fall behind the master: it pauses every
// replica (Server.Pause) and then closes the master's replication links
// (CLIENT KILL TYPE replica), so no write the master acknowledges from then
// on reaches a replica. Pausing alone would not do: what the master sent
// waits in the paused replica's socket buffer and is applied on Resume. To
// lose acknowledged writes as a failover under replication lag does, write,
// Kill the master, Resume the replicas and WaitFailover. StallReplicas
// returns the paused replicas.
func (d *Sentinel) StallReplicas() []*Server {
	d.tb.Helper()
	m := d.Master()
	rs := d.Replicas()
	for _, r := range rs {
		r.Pause()
	}
	if n := m.ClientKill("replica"); n != len(rs) {
		d.tb.Fatalf("redistest: CLIENT KILL TYPE replica on the master %s closed %d links, want %d", m.addr, n, len(rs))
	}
	return rs
}

// masterAddr asks sn for the master's address.
func (d *Sentinel) masterAddr(sn *Server) (string, error) {
	v, err := sn.doValue(pollTimeout, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", d.opts.MasterName)
	if err != nil {
		return "", err
	}
	a, _ := v.([]any)
	if len(a) != 2 {
		return "", fmt.Errorf("sentinel %s: GET-MASTER-ADDR-BY-NAME = %s", sn.addr, format(v))
	}
	host, _ := a[0].(string)
	port, _ := a[1].(string)
	return net.JoinHostPort(host, port), nil
}

// server returns the data server listening on addr, or nil.
func (d *Sentinel) server(addr string) *Server {
	for _, srv := range d.data {
		if srv.addr == addr {
			return srv
		}
	}
	return nil
}

// Failover runs SENTINEL FAILOVER (a failover without agreement, the old
// master being alive), waits as WaitFailover does, then turns the old
// master into a replica of the new one with REPLICAOF and waits for it to
// sync: the sentinels would do so too, but only some 8 s later (4 hello
// periods). It returns the new master.
func (d *Sentinel) Failover() *Server {
	d.tb.Helper()
	old := d.Master()
	waitFor(d.tb, FailoverWait, "SENTINEL FAILOVER accepted", func() (bool, string) {
		sn := d.upSentinel()
		_, err := sn.Do("SENTINEL", "FAILOVER", d.opts.MasterName)
		if err != nil && !strings.Contains(err.Error(), "INPROG") && !strings.Contains(err.Error(), "NOGOODSLAVE") {
			d.tb.Fatalf("redistest: SENTINEL FAILOVER on %s: %v", sn.addr, err)
		}
		return err == nil, fmt.Sprint(err)
	})
	nm := d.WaitFailover(old)
	if old.up() {
		if _, err := old.Do("REPLICAOF", "127.0.0.1", strconv.Itoa(nm.port)); err != nil {
			d.tb.Fatalf("redistest: REPLICAOF on the old master %s: %v", old.addr, err)
		}
		waitFor(d.tb, FailoverWait, "old master "+old.addr+" in sync with the new one", func() (bool, string) {
			return linkedTo(old, nm)
		})
	}
	return nm
}

// WaitFailover waits until every sentinel that runs names a master other
// than old, that server says it is a master, and every data server but old
// that runs and is not paused replicates it with its link up. It returns
// the new master. Use it after killing or pausing the master to let the
// sentinels fail over on their own, which takes some 3 to 5 s.
func (d *Sentinel) WaitFailover(old *Server) *Server {
	d.tb.Helper()
	var nm *Server
	waitFor(d.tb, FailoverWait, "sentinels agree on a master other than "+old.addr, func() (bool, string) {
		nm = nil
		for _, sn := range d.sentinels {
			if !sn.up() {
				continue
			}
			addr, err := d.masterAddr(sn)
			if err != nil {
				return false, err.Error()
			}
			if addr == old.addr || (nm != nil && addr != nm.addr) {
				return false, fmt.Sprintf("sentinel %s names %s", sn.addr, addr)
			}
			if nm = d.server(addr); nm == nil {
				return false, fmt.Sprintf("sentinel %s names %s, none of ours", sn.addr, addr)
			}
		}
		if nm == nil {
			return false, "no sentinel runs"
		}
		info, err := nm.info("replication")
		if err != nil || info["role"] != "master" {
			return false, fmt.Sprintf("new master %s: role %q, %v", nm.addr, info["role"], err)
		}
		for _, srv := range d.data {
			if srv == nm || srv == old || !srv.up() {
				continue
			}
			if ok, state := linkedTo(srv, nm); !ok {
				return false, state
			}
		}
		return true, ""
	})
	return nm
}

// upSentinel returns the first sentinel that runs and is not paused.
func (d *Sentinel) upSentinel() *Server {
	d.tb.Helper()
	for _, sn := range d.sentinels {
		if sn.up() {
			return sn
		}
	}
	d.tb.Fatalf("redistest: no sentinel runs")
	return nil
}

// linkedTo reports whether replica replicates master with its link up.
func linkedTo(replica, master *Server) (bool, string) {
	info, err := replica.info("replication")
	if err != nil {
		return false, fmt.Sprintf("%s: %v", replica.addr, err)
	}
	if info["role"] != "slave" || info["master_port"] != strconv.Itoa(master.port) || info["master_link_status"] != "up" {
		return false, fmt.Sprintf("%s: role %s, master port %s, link %s; want a replica of %s, link up",
			replica.addr, info["role"], info["master_port"], info["master_link_status"], master.addr)
	}
	return true, ""
}
