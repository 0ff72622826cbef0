package main_test

import (
	"debug/buildinfo"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// versionLines checks the three lines of "redisync version" of the binary at path against its
// build info, and that --version prints the same; it returns the version line.
func versionLines(t *testing.T, path string) (version, commit string) {
	t.Helper()
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	out, errOut, code := runBinary(t, path, "version")
	if code != 0 || errOut != "" {
		t.Fatalf("%s version: exit %d, stderr %q", path, code, errOut)
	}
	flagOut, _, code := runBinary(t, path, "--version")
	if code != 0 || flagOut != out {
		t.Errorf("--version printed %q (exit %d), want what version printed: %q", flagOut, code, out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("version printed %q, want 3 lines", out)
	}
	version, ok := strings.CutPrefix(lines[0], "redisync ")
	if !ok || !strings.HasPrefix(version, bi.Main.Version) {
		t.Errorf("version line %q, want \"redisync %s…\" (the module version of the build info)", lines[0], bi.Main.Version)
	}
	commit, ok = strings.CutPrefix(lines[1], "commit: ")
	switch rev := settings["vcs.revision"]; {
	case !ok:
		t.Errorf("second line %q, want \"commit: …\"", lines[1])
	case rev == "" && !strings.HasPrefix(commit, "unknown"):
		t.Errorf("commit line %q for a build without VCS information, want unknown", lines[1])
	case rev != "" && !strings.HasPrefix(commit, rev):
		t.Errorf("commit line %q, want the revision %s", lines[1], rev)
	case rev != "" && strings.Contains(commit, "(dirty)") != (settings["vcs.modified"] == "true"):
		t.Errorf("commit line %q, but vcs.modified is %q", lines[1], settings["vcs.modified"])
	}
	if want := "go: " + bi.GoVersion + " " + runtime.GOOS + "/" + runtime.GOARCH; lines[2] != want {
		t.Errorf("third line %q, want %q", lines[2], want)
	}
	return version, commit
}

func runBinary(t *testing.T, path string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(path, args...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return o.String(), e.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), 0
}

// "redisync version" and "redisync --version" print the module version, the commit and the Go
// version from the binary's build info: for the binary the tests built, and for one built
// with VCS stamping from this checkout, whose revision and dirty flag they must show.
func TestVersion(t *testing.T) {
	v, _ := versionLines(t, binary)
	t.Logf("the test binary says it is %s", v)

	// The second half needs git and a checkout (a source tarball has neither): without them
	// it is left out, saying so, and the test stands on the first half.
	git, err := exec.LookPath("git")
	if err != nil {
		t.Log("git is not on PATH: the build with VCS information is not checked")
		return
	}
	top, err := exec.Command(git, "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Logf("not in a git checkout (%v): the build with VCS information is not checked", err)
		return
	}
	head, err := exec.Command(git, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "redisync-vcs")
	build := exec.Command("go", "build", "-buildvcs=true", "-o", path, ".") // over a -buildvcs=false in GOFLAGS
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -buildvcs=true in %s: %v\n%s", strings.TrimSpace(string(top)), err, out)
	}
	v, commit := versionLines(t, path)
	t.Logf("built with VCS information: %s, commit %s", v, commit)
	if rev := strings.TrimSpace(string(head)); !strings.HasPrefix(commit, rev) {
		t.Errorf("commit line %q, want HEAD, %s", commit, rev)
	}
	// Go stamps a pseudo-version (or the tag) from the commit; "(devel)" only when it cannot.
	if !regexp.MustCompile(`^v\d+\.\d+\.\d+`).MatchString(v) && !strings.HasPrefix(v, "(devel)+") {
		t.Errorf("version %q: want a tag, a pseudo-version, or (devel)+REVISION", v)
	}
}
