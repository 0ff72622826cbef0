package channel

import (
	"crypto/sha1"
	_ "embed"
	"encoding/hex"

	"github.com/redis/rueidis"
)

// libLua holds the Lua functions shared by every script that appends to a channel; a script
// that appends is sent as libLua followed by its own text.
//
//go:embed scripts/lib.lua
var libLua string

//go:embed scripts/publish.lua
var publishLua string

//go:embed scripts/fetch.lua
var fetchLua string

//go:embed scripts/heads.lua
var headsLua string

var (
	publishScript = NewAppendScript(publishLua)
	fetchScript   = rueidis.NewLuaScriptReadOnly(fetchLua) // EVALSHA_RO: read-only users may subscribe
)

// AppendScript is a script that appends to a channel, for packages built on channels (maps):
// its text follows the shared functions of channel/scripts/lib.lua. Run it with ExecAppend.
type AppendScript struct {
	lua       *rueidis.Lua
	text, sha string
}

// NewAppendScript returns the script whose own text is body (see PROTOCOL.md for the
// arguments ExecAppend gives it).
func NewAppendScript(body string) *AppendScript {
	text := libLua + body
	sum := sha1.Sum([]byte(text))
	return &AppendScript{lua: rueidis.NewLuaScript(text), text: text, sha: hex.EncodeToString(sum[:])}
}
