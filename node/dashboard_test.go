package node

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// screenshotEnv names the file where TestNodeDashboardBrowser also saves its screenshot
// (the repository's docs/dashboard.png is made with REDISYNC_SCREENSHOT=$PWD/docs/dashboard.png).
const screenshotEnv = "REDISYNC_SCREENSHOT"

// findChromium returns the path of Debian's chromium, failing the test (never skipping it)
// when it is missing.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("the dashboard test needs a headless Chromium and found none on PATH: apt-get install -y chromium")
	return ""
}

// The dashboard in a real headless browser: node A's page (with a token) lists both nodes,
// and a write on node B shows up on it.
func TestNodeDashboardBrowser(t *testing.T) {
	chromium := findChromium(t)
	srv := startRedis(t)
	prefix := newPrefix()
	cfg := func(id string) Config {
		return Config{ID: id, Maps: []string{"inventory", "users"}, Channels: []string{"events"}, Token: "s3cret", Version: "v0.1.0"}
	}
	a := startNode(t, srv.URL(), prefix, cfg("node-a"))
	b := startNode(t, srv.URL(), prefix, cfg("node-b"))
	a.waitReady(t)
	b.waitReady(t)
	auth := []string{"Authorization", "Bearer s3cret"}
	for i, name := range []string{"ada", "grace", "edsger", "barbara", "ken", "margaret"} {
		body := fmt.Sprintf(`{"name":%q,"logins":%d}`, name, i*7)
		expect(t, "PUT", do(t, "PUT", b.url+"/v1/maps/users/keys/user:"+name, strings.NewReader(body), auth...), http.StatusOK)
		expect(t, "PUT", do(t, "PUT", a.url+fmt.Sprint("/v1/maps/inventory/keys/sku-", 100+i), strings.NewReader(fmt.Sprint(i*3)), auth...), http.StatusOK)
	}

	// Steady traffic, so that the rates on the page are not all zero.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	trafficCtx, stopTraffic := context.WithCancel(ctx)
	var traffic sync.WaitGroup
	traffic.Add(1)
	go func() {
		defer traffic.Done()
		for i := 0; trafficCtx.Err() == nil; i++ {
			for _, req := range []*http.Request{
				newRequest(trafficCtx, "PUT", a.url+fmt.Sprint("/v1/maps/inventory/keys/sku-", 100+i%6), fmt.Sprint(i)),
				newRequest(trafficCtx, "POST", b.url+"/v1/channels/events", fmt.Sprint("tick ", i)),
			} {
				req.Header.Set(auth[0], auth[1])
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}
			select {
			case <-trafficCtx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	defer traffic.Wait()
	defer stopTraffic()

	br := newBrowser(t, ctx, chromium)
	bctx, poll := br.ctx, func(what, js string) { t.Helper(); br.poll(what, js, 15*time.Second) }
	br.navigate(a.url + "/?token=s3cret")
	poll("both nodes", text("#nodes tbody")+`.includes('node-a') && `+text("#nodes tbody")+`.includes('node-b')`)
	if search, err := chromedp.Run(bctx, chromedp.Evaluate[string](`location.search`)); err != nil || strings.Contains(search, "token") {
		t.Errorf("the token stayed in the address bar: %q (%v)", search, err)
	}
	poll("both maps in sync", text("#map-users .pill")+` === 'in sync' && `+text("#map-inventory .pill")+` !== ''`)

	// Look at the users map, then write to it on node B.
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`(() => { const s = document.getElementById('map-select');
		s.value = 'users'; s.dispatchEvent(new Event('change')); return true; })()`)); err != nil {
		t.Fatal(err)
	}
	poll("the users' keys", text("#keys tbody")+`.includes('user:ada')`)
	poll("the live stream open", text("#watch-state")+`.includes('streaming')`)
	expect(t, "PUT on b", do(t, "PUT", b.url+"/v1/maps/users/keys/user:written-on-b", strings.NewReader(`{"name":"from node B"}`), auth...), http.StatusOK)
	poll("the write on node B in the keys", text("#keys tbody")+`.includes('user:written-on-b') && `+text("#keys tbody")+`.includes('from node B')`)
	poll("the write on node B in the live changes", text("#changes")+`.includes('user:written-on-b')`)
	poll("the maps in sync after the write", text("#map-users .pill")+` === 'in sync'`)

	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("the screenshot is not a PNG (%d bytes)", len(png))
	}
	shot := filepath.Join(t.TempDir(), "dashboard.png")
	if dst := os.Getenv(screenshotEnv); dst != "" {
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		shot = dst
	}
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("dashboard screenshot: %s (%d bytes)", shot, len(png))
}

// The dashboard shows trouble, each kind in a real browser: replicas that differ from Redis
// at the same seq are red under a "diverged" badge; a node frozen with SIGSTOP while writes go
// on is late, with its lag from the head read now; once its record has expired it is gone;
// with Redis frozen the page paints at once from the node's own state and says in a banner
// that Redis is unreachable. The page's own pill ("page updating") stays apart from the
// cluster's health.
func TestNodeDashboardTrouble(t *testing.T) {
	chromium := findChromium(t)
	srv := startRedis(t)
	prefix := newPrefix()
	maps := []string{"busy", "quiet"}
	// WriteTimeout also bounds node-a's registry read: the banner comes after 1s.
	a := startNode(t, srv.URL(), prefix, Config{ID: "node-a", Maps: maps, WriteTimeout: time.Second})
	a.waitReady(t)
	f := startNodeProcess(t, nodeProcessSpec{Redis: srv.URL(), Prefix: prefix, ID: "node-f", Maps: maps,
		Heartbeat: 200 * time.Millisecond, TTL: 3 * time.Second})
	for i := range 3 {
		for _, m := range maps {
			expect(t, "PUT", do(t, "PUT", a.url+fmt.Sprintf("/v1/maps/%s/keys/k%d", m, i), strings.NewReader("v")), http.StatusOK)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	br := newBrowser(t, ctx, chromium)
	br.navigate(a.url + "/")
	row := func(table, node string) string { return text(table + ` tr[data-node="` + node + `"]`) }
	both := func(js string) string {
		return strings.ReplaceAll(js, "NODE", "node-a") + " && " + strings.ReplaceAll(js, "NODE", "node-f")
	}
	br.poll("both nodes live, the maps in sync, the page updating and the cluster healthy",
		both(row("#nodes", "NODE")+`.includes('live')`)+` && `+text("#map-quiet .pill")+` === 'in sync' && `+
			text("#status")+` === 'page updating' && `+text("#health")+` === 'cluster: healthy'`, 15*time.Second)

	// Redis's digest of quiet tampered with: both replicas differ from it at the same seq.
	if _, err := srv.Do("HSET", prefix+":{quiet}:meta", "dx", "12345"); err != nil {
		t.Fatal(err)
	}
	br.poll("quiet diverged, both digests red", text("#map-quiet .pill")+` === 'diverged' && `+
		`document.querySelectorAll('#map-quiet td.digest.differs').length === 2 && `+
		`document.querySelectorAll('#map-quiet td.digest.same').length === 0 && `+
		text("#health")+`.includes('map quiet diverged') && `+text("#status")+` === 'page updating'`, 10*time.Second)

	// Writes on busy, and node-f frozen.
	trafficCtx, stopTraffic := context.WithCancel(ctx)
	var traffic sync.WaitGroup
	traffic.Add(1)
	go func() {
		defer traffic.Done()
		for i := 0; trafficCtx.Err() == nil; i++ {
			if resp, err := http.DefaultClient.Do(newRequest(trafficCtx, "PUT", a.url+fmt.Sprint("/v1/maps/busy/keys/k", i%5), fmt.Sprint(i))); err == nil {
				resp.Body.Close()
			}
			select {
			case <-trafficCtx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	defer traffic.Wait()
	defer stopTraffic()
	f.freeze(t)
	lag := `Number((document.querySelector('#map-busy tr[data-node="node-f"] td.lag') || {textContent: '0'}).textContent.replace(/\D/g, ''))`
	br.poll("node-f late, with its lag from the head", row("#nodes", "node-f")+`.includes('late') && `+
		row("#map-busy", "node-f")+`.includes('late') && `+lag+` >= 5 && `+
		text("#health")+`.includes('1 node late') && `+text("#problems")+`.includes('node node-f is late')`, 10*time.Second)
	br.poll("node-f gone", row("#nodes", "node-f")+`.includes('gone') && `+text("#health")+`.includes('1 node gone') && `+
		`!document.querySelector('#map-busy tr[data-node="node-f"]')`, 15*time.Second)
	stopTraffic()

	// Redis frozen: a page opened now paints node-a at once, then names Redis unreachable.
	srv.Pause()
	defer srv.Resume()
	br.navigate(a.url + "/")
	br.poll("node-a's own state at once", row("#nodes", "node-a")+` !== '' && document.querySelector('#map-busy') && `+
		`document.querySelector('#map-quiet') && `+text("#status")+` === 'page updating'`, 3*time.Second)
	br.poll("a banner naming Redis unreachable", `!document.getElementById('banner').hidden && `+
		text("#banner")+`.startsWith('Redis unreachable') && `+text("#banner")+`.includes('registry') && `+
		`!`+text("#banner")+`.includes('applied') && `+text("#health")+` === 'Redis unreachable' && `+
		text("#status")+` === 'page updating'`, 10*time.Second)
	srv.Resume()
	br.poll("the banner gone once Redis answers", `document.getElementById('banner').hidden && `+
		text("#health")+`.startsWith('cluster: ')`, 15*time.Second)
}

// text is JavaScript for the text of the element sel selects (empty when none).
func text(sel string) string {
	return fmt.Sprintf(`(document.querySelector(%q) || {textContent: ''}).textContent`, sel)
}

// browser is a headless Chromium driven with chromedp.
type browser struct {
	t   *testing.T
	ctx context.Context
}

// newBrowser starts the headless Chromium at path for the test, until ctx ends or the test
// does.
func newBrowser(t *testing.T, ctx context.Context, path string) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	return &browser{t: t, ctx: bctx}
}

// navigate opens url and waits for the page to load.
func (b *browser) navigate(url string) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Navigate(url)); err != nil {
		b.t.Fatalf("opening %s in Chromium: %v", url, err)
	}
}

// poll waits until the JavaScript expression js is true on the page, failing the test with
// the page's text after within.
func (b *browser) poll(what, js string, within time.Duration) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](js, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(within))); err != nil {
		page, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body.innerText`))
		b.t.Fatalf("the page never showed %s within %v: %v\npage text:\n%s", what, within, err, page)
	}
}

func newRequest(ctx context.Context, method, url, body string) *http.Request {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	return req
}
