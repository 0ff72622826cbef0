package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redisync/redisync/internal/redistest"
)

// quickStart returns the shell commands of the README's Quick start: its first sh block.
func quickStart(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Quick start\n")
	if !ok {
		t.Fatal("README.md has no \"## Quick start\" section")
	}
	_, block, ok := strings.Cut(section, "```sh\n")
	if !ok {
		t.Fatal("the Quick start has no sh block")
	}
	block, _, ok = strings.Cut(block, "```\n")
	if !ok {
		t.Fatal("the Quick start's sh block does not end")
	}
	return block
}

// The README's Quick start, pasted into a shell as a script, works: against a Redis of the
// test's own and with the binary the tests built, it prints what its comments say.
func TestQuickStart(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	dir := t.TempDir()
	if err := os.Symlink(binary, filepath.Join(dir, "redisync")); err != nil {
		t.Fatal(err)
	}
	// The two set-up lines are replaced: the binary is there already, and Redis is the test's.
	var script strings.Builder
	replaced := 0
	for _, line := range strings.SplitAfter(quickStart(t), "\n") {
		switch {
		case strings.HasPrefix(line, "go build -o redisync ./cmd/redisync"):
			replaced++
			continue
		case strings.HasPrefix(line, "export REDIS_URL="):
			replaced++
			line = "export REDIS_URL=" + srv.URL() + "\n"
		}
		script.WriteString(line)
	}
	if replaced != 2 {
		t.Fatalf("the Quick start lacks the go build or the export REDIS_URL line:\n%s", quickStart(t))
	}
	t.Logf("script:\n%s", script.String())

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-e", "-c", script.String())
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	subLog, _ := os.ReadFile(filepath.Join(dir, "sub.log"))
	t.Logf("ran in %v; stdout:\n%s\nstderr:\n%s\nsub.log:\n%s", time.Since(start).Round(time.Millisecond), stdout.String(), stderr.String(), subLog)
	if err != nil {
		t.Fatalf("the Quick start failed: %v", err)
	}

	lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	if len(lines) != 4 || lines[0] != "1" || lines[1] != "1001" || lines[2] != "1001\t1000" {
		t.Fatalf("stdout:\n%s\nwant 1, 1001, \"1001<TAB>1000\" and a JSON line", stdout.String())
	}
	var ev struct {
		Seq   uint64 `json:"seq"`
		Epoch string `json:"epoch"`
		Pos   string `json:"pos"`
		Data  string `json:"data"`
	}
	if err := json.Unmarshal([]byte(lines[3]), &ev); err != nil || ev.Seq != 1 || ev.Epoch == "" || ev.Pos != ev.Epoch+":1" || ev.Data != "order 1 created" {
		t.Errorf("last line %q: want message 1, \"order 1 created\", with pos EPOCH:1", lines[3])
	}

	// The subscriber started before the publishes got every message, in order.
	got, err := os.ReadFile(filepath.Join(dir, "orders.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	want.WriteString("1\torder 1 created\n")
	for i := 1; i <= 1000; i++ {
		fmt.Fprintf(&want, "%d\t%d\n", i+1, i)
	}
	if string(got) != want.String() {
		t.Errorf("orders.txt (tail):\n%s\nwant the 1001 messages in order", tail(string(got), 5))
	}
}
