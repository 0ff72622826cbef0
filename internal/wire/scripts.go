package wire

import (
	"context"
	"crypto/sha1"
	_ "embed"
	"encoding/hex"

	"github.com/redis/rueidis"
)

// The scripts, documented in PROTOCOL.md. A script that appends to a channel is sent as lib.lua
// followed by its own text, with no separator.
var (
	//go:embed scripts/lib.lua
	libLua string
	//go:embed scripts/publish.lua
	publishLua string
	//go:embed scripts/write.lua
	writeLua string
	//go:embed scripts/fetch.lua
	fetchLua string
	//go:embed scripts/heads.lua
	headsLua string
	//go:embed scripts/get.lua
	getLua string
	//go:embed scripts/mark.lua
	markLua string
)

// Script is a Lua script of the protocol.
type Script struct {
	lua       *rueidis.Lua
	text, sha string
	readOnly  bool
}

func newScript(text string, readOnly bool) *Script {
	sum := sha1.Sum([]byte(text))
	s := &Script{text: text, sha: hex.EncodeToString(sum[:]), readOnly: readOnly}
	if readOnly {
		s.lua = rueidis.NewLuaScriptReadOnly(text) // EVALSHA_RO: read-only users may run it
	} else {
		s.lua = rueidis.NewLuaScript(text)
	}
	return s
}

// The scripts.
var (
	// Publish appends messages to a channel (PROTOCOL.md section 2).
	Publish = newScript(libLua+publishLua, false)
	// Write applies an atomic write to a map (section 7).
	Write = newScript(libLua+writeLua, false)
	// Fetch reads a channel's head and log entries (section 4). Read-only.
	Fetch = newScript(fetchLua, true)
	// Heads reads the heads of many channels (section 5). Read-only.
	Heads = newScript(headsLua, true)
	// Get reads one key of a map with the map's head (section 7). Read-only.
	Get = newScript(getLua, true)
	// Mark records where a channel's history parted (section 5).
	Mark = newScript(markLua, false)
)

// Exec runs s once.
func (s *Script) Exec(ctx context.Context, rc rueidis.Client, keys, args []string) rueidis.RedisResult {
	return s.lua.Exec(ctx, rc, keys, args)
}

// ExecMulti runs s once per exec, pipelined.
func (s *Script) ExecMulti(ctx context.Context, rc rueidis.Client, execs ...rueidis.LuaExec) []rueidis.RedisResult {
	return s.lua.ExecMulti(ctx, rc, execs...)
}
