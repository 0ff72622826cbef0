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

// Script is a Lua script of the protocol. It runs as EVALSHA (EVALSHA_RO when read-only, so
// that read-only users may run it), and as EVAL when Redis does not know it yet (NOSCRIPT).
//
// Its commands are pinned: rueidis does not recycle them into its pool of command buffers.
// A command answered on a connection whose writer goroutine had read it has no
// happens-before edge to that read but the socket; reusing its buffer for the next command
// (the EVAL after a NOSCRIPT, say) is then a data race to the race detector, and, after a
// connection was cut while writing, a real one.
type Script struct {
	text, sha string
	readOnly  bool
}

func newScript(text string, readOnly bool) *Script {
	sum := sha1.Sum([]byte(text))
	return &Script{text: text, sha: hex.EncodeToString(sum[:]), readOnly: readOnly}
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
	r := rc.Do(ctx, s.command(rc.B(), true, keys, args))
	if noScript(r) {
		r = rc.Do(ctx, s.command(rc.B(), false, keys, args))
	}
	return r
}

// ExecMulti runs s once per exec, pipelined.
func (s *Script) ExecMulti(ctx context.Context, rc rueidis.Client, execs ...rueidis.LuaExec) []rueidis.RedisResult {
	cmds := make(rueidis.Commands, len(execs))
	for i, e := range execs {
		cmds[i] = s.command(rc.B(), true, e.Keys, e.Args)
	}
	rs := rc.DoMulti(ctx, cmds...)
	for i, r := range rs {
		if noScript(r) {
			rs[i] = rc.Do(ctx, s.command(rc.B(), false, execs[i].Keys, execs[i].Args))
		}
	}
	return rs
}

// command builds the pinned EVALSHA (bySHA) or EVAL of s.
func (s *Script) command(b rueidis.Builder, bySHA bool, keys, args []string) rueidis.Completed {
	n := int64(len(keys))
	var c rueidis.Completed
	switch {
	case bySHA && s.readOnly:
		c = b.EvalshaRo().Sha1(s.sha).Numkeys(n).Key(keys...).Arg(args...).Build()
	case bySHA:
		c = b.Evalsha().Sha1(s.sha).Numkeys(n).Key(keys...).Arg(args...).Build()
	case s.readOnly:
		c = b.EvalRo().Script(s.text).Numkeys(n).Key(keys...).Arg(args...).Build()
	default:
		c = b.Eval().Script(s.text).Numkeys(n).Key(keys...).Arg(args...).Build()
	}
	return c.Pin()
}

// noScript reports whether r is Redis not knowing the script (NOSCRIPT).
func noScript(r rueidis.RedisResult) bool {
	err, ok := rueidis.IsRedisErr(r.Error())
	return ok && err.IsNoScript()
}
