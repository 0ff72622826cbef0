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
	browser := findChromium(t)
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

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(browser),
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
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()

	poll := func(what, js string) {
		t.Helper()
		if _, err := chromedp.Run(bctx, chromedp.Poll[bool](js, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second))); err != nil {
			page, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body.innerText`))
			t.Fatalf("the page never showed %s: %v\npage text:\n%s", what, err, page)
		}
	}
	if _, err := chromedp.Run(bctx, chromedp.Navigate(a.url+"/?token=s3cret")); err != nil {
		t.Fatalf("opening the dashboard in %s: %v", browser, err)
	}
	text := func(sel string) string {
		return fmt.Sprintf(`(document.querySelector(%q) || {textContent: ''}).textContent`, sel)
	}
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

func newRequest(ctx context.Context, method, url, body string) *http.Request {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	return req
}
