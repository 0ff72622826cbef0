package redisync_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/internal/redistest"
	"github.com/redisync/redisync/redisconn"
	"github.com/redisync/redisync/replmap"
)

// TestReadmeGoSnippetsCompile builds every Go block of README.md as written: each is a
// complete program, so that a reader can paste it into a file and run it.
func TestReadmeGoSnippetsCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds programs with the go tool; skipped with -short")
	}
	text, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := goBlocks(string(text))
	if len(blocks) == 0 {
		t.Fatal("README.md has no Go block")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is needed to build the README's snippets: %v", err)
	}
	for i, b := range blocks {
		if !strings.HasPrefix(b.code, "package ") {
			t.Errorf("README.md line %d: a Go block must be a whole program starting with \"package\"", b.line)
			continue
		}
		// Inside the module, so that its packages resolve; removed afterwards.
		dir, err := os.MkdirTemp(".", ".readme-snippet-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(b.code), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(gobin, "vet", "./"+filepath.Base(dir))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("README.md Go block %d (line %d) does not build: %v\n%s", i+1, b.line, err, out)
		}
	}
}

type snippet struct {
	line int // of the opening fence, 1-based
	code string
}

// goBlocks returns the fenced ```go blocks of a Markdown text.
func goBlocks(md string) []snippet {
	var out []snippet
	lines := strings.Split(md, "\n")
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "```go" {
			continue
		}
		start := i
		var code []string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			code = append(code, lines[i])
		}
		out = append(out, snippet{line: start + 1, code: strings.Join(code, "\n") + "\n"})
	}
	return out
}

// TestReadmeACLUsers creates the README's ACL users exactly as written and checks what it
// says of them: the reader subscribes and holds a map replica but cannot write; the writer
// publishes and writes maps, with MinReplicas too.
func TestReadmeACLUsers(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server; skipped with -short")
	}
	text, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	srv := redistest.Start(t, redistest.Options{})
	users := 0
	for _, line := range strings.Split(string(text), "\n") {
		if !strings.HasPrefix(line, "ACL SETUSER ") {
			continue
		}
		args := strings.Fields(strings.ReplaceAll(line, ">PASSWORD", ">pw"))
		if _, err := srv.Do(args...); err != nil {
			t.Fatalf("README line %q: %v", line, err)
		}
		users++
	}
	if users != 2 {
		t.Fatalf("README has %d ACL SETUSER lines, want the reader and the writer", users)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	open := func(user string, cfg channel.Config) *channel.Client {
		rc, err := redisconn.Open(ctx, redisconn.Options{URL: "redis://" + user + ":pw@" + srv.Addr()})
		if err != nil {
			t.Fatalf("%s: %v", user, err)
		}
		c, err := channel.New(rc, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(); rc.Close() })
		return c
	}
	writer := open("writer", channel.Config{})
	reader := open("reader", channel.Config{IdleCheck: 50 * time.Millisecond})

	got := make(chan string, 10)
	sub, err := reader.Subscribe(ctx, "orders", channel.FromNow(), func(_ context.Context, ev channel.Event) error {
		got <- string(ev.Data)
		return nil
	})
	if err != nil {
		t.Fatalf("reader subscribes: %v", err)
	}
	defer sub.Close()
	if _, err := writer.Publish(ctx, "orders", []byte("o1")); err != nil {
		t.Fatalf("writer publishes: %v", err)
	}
	if d := <-got; d != "o1" {
		t.Fatalf("reader got %q", d)
	}
	if _, err := reader.Publish(ctx, "orders", []byte("no")); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("reader publishes: %v, want NOPERM", err)
	}

	wm, err := replmap.Open(writer, "prices", replmap.Config[int]{})
	if err != nil {
		t.Fatal(err)
	}
	defer wm.Close()
	if err := wm.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	ver, err := wm.Set(ctx, "sku-1", 999)
	if err != nil {
		t.Fatalf("writer writes a map: %v", err)
	}
	rm, err := replmap.Open(reader, "prices", replmap.Config[int]{})
	if err != nil {
		t.Fatal(err)
	}
	defer rm.Close()
	if err := rm.WaitReady(ctx); err != nil {
		t.Fatalf("reader loads the map: %v", err)
	}
	if v, gotVer, err := rm.Get("sku-1"); err != nil || v != 999 || gotVer != ver {
		t.Fatalf("reader's replica: %d@%d, %v", v, gotVer, err)
	}
	if v, err := rm.Verify(ctx); err != nil || !v.Match {
		t.Fatalf("reader verifies: %+v, %v", v, err)
	}
	if _, err := rm.Set(ctx, "sku-2", 1); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("reader writes a map: %v, want NOPERM", err)
	}
	// WAIT, for MinReplicas (no replica here: the write is applied and says so).
	durable := open("writer", channel.Config{MinReplicas: 1, ReplicaTimeout: 50 * time.Millisecond})
	if _, err := durable.Publish(ctx, "orders", []byte("o2")); !errors.Is(err, channel.ErrNotReplicated) {
		t.Fatalf("writer publishes with MinReplicas: %v, want ErrNotReplicated", err)
	}
}
