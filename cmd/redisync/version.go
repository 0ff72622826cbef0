package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// buildVersion is what the binary knows of its own build, from runtime/debug's build info.
type buildVersion struct {
	Module   string // the main module's version: a tag, a pseudo-version, or "(devel)"
	Revision string // the VCS commit the binary was built from; "" when unknown
	Time     string // the commit's time (RFC 3339); "" when unknown
	Dirty    bool   // the working tree had uncommitted changes
	Go       string // the Go toolchain that built it
}

// develVersion is the module version Go records for a build from a source tree that carries
// no version (go build -buildvcs=false, go run, a tree outside version control).
const develVersion = "(devel)"

// readVersion reads the running binary's build info.
func readVersion() buildVersion {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return buildVersion{Module: develVersion, Go: runtime.Version()}
	}
	return versionOf(bi)
}

// versionOf extracts a buildVersion from build info.
func versionOf(bi *debug.BuildInfo) buildVersion {
	v := buildVersion{Module: bi.Main.Version, Go: bi.GoVersion}
	if v.Module == "" {
		v.Module = develVersion
	}
	if v.Go == "" {
		v.Go = runtime.Version()
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Dirty = s.Value == "true"
		}
	}
	return v
}

// String is the version the binary reports everywhere (redisync version, --version, and the
// version a node records in the registry): the module version, a tag such as v1.2.0 or a
// pseudo-version such as v0.0.0-20250102150405-0123456789ab (+dirty); for a source build,
// "(devel)", followed by "+REVISION" (12 hex digits) and ".dirty" when build info has them.
func (v buildVersion) String() string {
	if v.Module != develVersion || v.Revision == "" {
		return v.Module
	}
	s := v.Module + "+" + shortRevision(v.Revision)
	if v.Dirty {
		s += ".dirty"
	}
	return s
}

// shortRevision is rev cut to 12 characters, as Go's pseudo-versions do.
func shortRevision(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

// print writes the three lines of "redisync version":
//
//	redisync VERSION
//	commit: REVISION [(dirty)] [TIME] | unknown (…)
//	go: GOVERSION OS/ARCH
func (v buildVersion) print(w io.Writer) error {
	commit := "unknown (the binary was built without VCS information)"
	if v.Revision != "" {
		commit = v.Revision
		if v.Dirty {
			commit += " (dirty)"
		}
		if v.Time != "" {
			commit += " " + v.Time
		}
	}
	_, err := fmt.Fprintf(w, "redisync %s\ncommit: %s\ngo: %s %s/%s\n", v, commit, v.Go, runtime.GOOS, runtime.GOARCH)
	return err
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version of this binary",
		Long: `Print what this binary was built from, as three lines (the same as redisync --version):
  redisync VERSION
  commit: REVISION [(dirty)] [COMMIT TIME]
  go: GO VERSION OS/ARCH

VERSION is the module version Go recorded in the binary: a release tag (v1.2.0) for
"go install github.com/redisync/redisync/cmd/redisync@v1.2.0", or a pseudo-version
(v0.0.0-DATE-COMMIT, with +dirty for uncommitted changes) for a build in a git checkout.
A build that carries no version ("go build -buildvcs=false", "go run") says "(devel)",
followed by +COMMIT and .dirty when the build recorded them.

The commit line gives the full revision, "(dirty)" when the tree had uncommitted changes,
and the commit's time; "unknown" when the binary was built without VCS information.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return readVersion().print(cmd.OutOrStdout())
		},
	}
}
