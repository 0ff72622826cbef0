package redisync_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
