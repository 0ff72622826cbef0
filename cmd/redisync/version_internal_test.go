package main

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionString(t *testing.T) {
	const rev = "0123456789abcdef0123456789abcdef01234567"
	vcs := func(modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev},
			{Key: "vcs.time", Value: "2025-01-02T03:04:05Z"}, {Key: "vcs.modified", Value: modified}}
	}
	for _, tc := range []struct {
		name     string
		main     string
		settings []debug.BuildSetting
		version  string // String()
		commit   string // the second line of print
	}{
		{"tag", "v1.2.0", vcs("false"), "v1.2.0", "commit: " + rev + " 2025-01-02T03:04:05Z"},
		{"go install of a tag", "v1.2.0", nil, "v1.2.0", "commit: unknown (the binary was built without VCS information)"},
		{"pseudo-version, dirty", "v0.0.0-20250102030405-0123456789ab+dirty", vcs("true"),
			"v0.0.0-20250102030405-0123456789ab+dirty", "commit: " + rev + " (dirty) 2025-01-02T03:04:05Z"},
		{"source build", "(devel)", nil, "(devel)", "commit: unknown (the binary was built without VCS information)"},
		{"source build with VCS", "(devel)", vcs("false"), "(devel)+0123456789ab", "commit: " + rev + " 2025-01-02T03:04:05Z"},
		{"source build with VCS, dirty", "(devel)", vcs("true"), "(devel)+0123456789ab.dirty", "commit: " + rev + " (dirty) 2025-01-02T03:04:05Z"},
		{"no version at all", "", nil, "(devel)", "commit: unknown (the binary was built without VCS information)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := versionOf(&debug.BuildInfo{GoVersion: "go1.99.0", Main: debug.Module{Path: "github.com/redisync/redisync", Version: tc.main}, Settings: tc.settings})
			if got := v.String(); got != tc.version {
				t.Errorf("String() = %q, want %q", got, tc.version)
			}
			var b strings.Builder
			if err := v.print(&b); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(b.String(), "\n")
			if len(lines) != 4 || lines[0] != "redisync "+tc.version || lines[1] != tc.commit || !strings.HasPrefix(lines[2], "go: go1.99.0 ") || lines[3] != "" {
				t.Errorf("print wrote %q, want \"redisync %s\", %q, \"go: go1.99.0 OS/ARCH\"", b.String(), tc.version, tc.commit)
			}
		})
	}
}
