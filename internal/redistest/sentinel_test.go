package redistest

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/rueidis"
)

// sentinelClient returns a rueidis client following d's sentinels, closed by t.Cleanup.
func sentinelClient(t *testing.T, d *Sentinel) rueidis.Client {
	t.Helper()
	opt, err := rueidis.ParseURL(d.URL())
	if err != nil {
		t.Fatalf("ParseURL(%q): %v", d.URL(), err)
	}
	opt.DisableCache = true
	opt.Sentinel.Username = d.opts.SentinelUser
	opt.Sentinel.Password = d.opts.SentinelPassword
	rc, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatalf("client of %q: %v", d.URL(), err)
	}
	t.Cleanup(rc.Close)
	return rc
}

// eventually retries op until it succeeds or timeout passes, and returns the last error.
func eventually(timeout time.Duration, op func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := op()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(pollInterval)
	}
}

func TestSentinelFailover(t *testing.T) {
	t.Parallel() // mostly waits on the deployment's timeouts
	start := time.Now()
	d := StartSentinel(t, SentinelOptions{})
	t.Logf("StartSentinel took %v", time.Since(start).Round(time.Millisecond))
	old := d.Master()
	if old != d.Servers()[0] {
		t.Fatalf("Master() = %s at the start, want the first server %s", old.Addr(), d.Servers()[0].Addr())
	}
	for _, r := range d.Replicas() {
		if ok, state := linkedTo(r, old); !ok {
			t.Fatalf("replica at the start: %s", state)
		}
	}
	ctx := context.Background()
	rc := sentinelClient(t, d)
	if err := rc.Do(ctx, rc.B().Set().Key("before").Value("1").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	old.WaitReplicas(d.Replicas()...)
	for _, r := range d.Replicas() {
		mustDo(t, r, "1", "GET", "before")
	}

	start = time.Now()
	nm := d.Failover()
	t.Logf("Failover took %v: %s -> %s", time.Since(start).Round(time.Millisecond), old.Addr(), nm.Addr())
	if nm == old {
		t.Fatal("Failover returned the old master")
	}
	if got := d.Master(); got != nm {
		t.Fatalf("Master() = %s after Failover, want %s", got.Addr(), nm.Addr())
	}
	for _, sn := range d.Sentinels() {
		if addr, err := d.masterAddr(sn); err != nil || addr != nm.Addr() {
			t.Errorf("sentinel %s names %s (%v), want %s", sn.Addr(), addr, err, nm.Addr())
		}
	}
	for _, r := range d.Replicas() {
		if r == nm {
			t.Fatal("Replicas() holds the master")
		}
		if ok, state := linkedTo(r, nm); !ok {
			t.Errorf("after Failover: %s", state)
		}
	}
	mustDo(t, nm, "1", "GET", "before")

	// The client follows the sentinels to the new master.
	err := eventually(5*time.Second, func() error {
		return rc.Do(ctx, rc.B().Set().Key("after").Value("2").Build()).Error()
	})
	if err != nil {
		t.Fatalf("SET through the sentinel URL after the failover: %v", err)
	}
	mustDo(t, nm, "2", "GET", "after")
}

// TestSentinelLostWrite loses a write the master acknowledged: both replicas are stalled while
// it is made, the master dies, and the sentinels promote a replica that never saw it.
func TestSentinelLostWrite(t *testing.T) {
	t.Parallel() // mostly waits on the deployment's timeouts
	d := StartSentinel(t, SentinelOptions{})
	old := d.Master()
	mustDo(t, old, "OK", "SET", "k", "replicated")
	old.WaitReplicas(d.Replicas()...)
	replicas := d.StallReplicas()
	mustDo(t, old, "OK", "SET", "k", "lost")
	if _, err := replicas[0].do(200*time.Millisecond, "PING"); err == nil {
		t.Fatal("a paused replica answered PING")
	}
	old.Kill()
	for _, r := range replicas {
		r.Resume()
	}
	start := time.Now()
	nm := d.WaitFailover(old)
	t.Logf("sentinels promoted %s %v after the master died", nm.Addr(), time.Since(start).Round(time.Millisecond))
	if nm == old {
		t.Fatal("WaitFailover returned the dead master")
	}
	mustDo(t, nm, "replicated", "GET", "k")
}

func TestSentinelOptions(t *testing.T) {
	t.Parallel() // mostly waits on the deployment's timeouts
	d := StartSentinel(t, SentinelOptions{
		MasterName:       "cache-main",
		AppendOnly:       true,
		Args:             []string{"--min-replicas-to-write", "1"},
		Password:         "data pw",
		SentinelUser:     "watcher",
		SentinelPassword: "sentinel&pw",
	})
	m := d.Master()
	mustDo(t, m, "[min-replicas-to-write 1]", "CONFIG", "GET", "min-replicas-to-write")
	mustDo(t, m, "[appendonly yes]", "CONFIG", "GET", "appendonly")
	mustDo(t, m, "[requirepass data pw]", "CONFIG", "GET", "requirepass")
	open := &Server{addr: m.Addr()}
	if _, err := open.Do("GET", "k"); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("GET on the master without a password: err = %v, want NOAUTH", err)
	}
	for _, sn := range d.Sentinels() {
		mustDo(t, sn, "watcher", "ACL", "WHOAMI")
		if _, err := (&Server{addr: sn.Addr()}).Do("PING"); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
			t.Errorf("PING on sentinel %s without a password: err = %v, want NOAUTH", sn.Addr(), err)
		}
		wrong := &Server{addr: sn.Addr(), opts: Options{Password: "data pw"}}
		if _, err := wrong.Do("PING"); err == nil {
			t.Errorf("sentinel %s accepted the data password", sn.Addr())
		}
	}

	u, err := url.Parse(d.URL())
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if pw, _ := u.User.Password(); pw != "data pw" || q.Get("master_set") != "cache-main" ||
		q.Get("sentinel_user") != "watcher" || q.Get("sentinel_password") != "sentinel&pw" ||
		u.Host != d.Addrs()[0] || strings.Join(q["addr"], ",") != strings.Join(d.Addrs()[1:], ",") {
		t.Fatalf("URL() = %q", d.URL())
	}
	rc := sentinelClient(t, d)
	ctx := context.Background()
	if err := rc.Do(ctx, rc.B().Set().Key("k").Value("v").Build()).Error(); err != nil {
		t.Fatalf("SET through %s: %v", d.URL(), err)
	}
	mustDo(t, m, "v", "GET", "k")
}

func TestPauseResume(t *testing.T) {
	s := Start(t, Options{})
	s.Pause()
	s.Pause() // no-op
	_, err := s.do(200*time.Millisecond, "PING")
	var ne interface{ Timeout() bool }
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("PING on a paused server: err = %v, want a timeout", err)
	}
	s.Resume()
	s.Resume() // no-op
	mustDo(t, s, "PONG", "PING")

	s.Pause()
	s.Stop() // resumes it first, or SHUTDOWN would wait for StopTimeout
	s.Restart()
	s.Pause()
	s.Kill()
	s.Restart()
	mustDo(t, s, "PONG", "PING")
}

func TestPassword(t *testing.T) {
	s := Start(t, Options{Password: "pw"})
	mustDo(t, s, "OK", "SET", "k", "v")
	if _, err := (&Server{addr: s.Addr()}).Do("GET", "k"); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("GET without the password: err = %v, want NOAUTH", err)
	}
	c := s.Client(t)
	if got, err := c.Do(context.Background(), c.B().Get().Key("k").Build()).ToString(); err != nil || got != "v" {
		t.Fatalf("GET through Client = %q, %v", got, err)
	}
	s.Restart()
	mustDo(t, s, "PONG", "PING")
}

func TestSentinelTLS(t *testing.T) {
	t.Parallel() // mostly waits on the deployment's timeouts
	certs := NewCerts(t)
	d := StartSentinel(t, SentinelOptions{TLS: certs})
	if !strings.HasPrefix(d.URL(), "rediss://") {
		t.Fatalf("URL() = %q, want rediss://", d.URL())
	}
	for _, s := range append(d.Sentinels(), d.Servers()...) {
		if _, err := (&Server{addr: s.Addr()}).do(time.Second, "PING"); err == nil {
			t.Errorf("%s answered a plain PING", s.Addr())
		}
	}
	opt, err := rueidis.ParseURL(d.URL())
	if err != nil {
		t.Fatal(err)
	}
	opt.DisableCache = true
	opt.TLSConfig = certs.ClientConfig(t)
	opt.Sentinel.TLSConfig = certs.ClientConfig(t)
	rc, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatalf("client of %q over TLS: %v", d.URL(), err)
	}
	defer rc.Close()
	ctx := context.Background()
	if err := rc.Do(ctx, rc.B().Set().Key("k").Value("v").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	nm := d.Failover()
	mustDo(t, nm, "v", "GET", "k")
}

func TestWaitReplicas(t *testing.T) {
	master := Start(t, Options{Args: []string{"--repl-diskless-sync-delay", "0"}})
	replica := Start(t, Options{Args: []string{"--replicaof", "127.0.0.1", itoa(master.port)}})
	waitFor(t, FailoverWait, "replica in sync", func() (bool, string) { return linkedTo(replica, master) })
	mustDo(t, master, "OK", "SET", "k", "1")
	master.WaitReplicas(replica)
	mustDo(t, replica, "1", "GET", "k")

	// A paused replica applies nothing: WaitReplicas returns only after it resumes.
	replica.Pause()
	mustDo(t, master, "OK", "SET", "k", "2")
	const pause = 300 * time.Millisecond
	start := time.Now()
	time.AfterFunc(pause, func() { _ = replica.cmd.Process.Signal(syscall.SIGCONT) })
	master.WaitReplicas(replica)
	if elapsed := time.Since(start); elapsed < pause {
		t.Fatalf("WaitReplicas returned after %v, before the replica resumed at %v", elapsed, pause)
	}
	replica.Resume() // only the state: the process runs already
	mustDo(t, replica, "2", "GET", "k")
}
