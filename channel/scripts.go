package channel

import (
	_ "embed"

	"github.com/redis/rueidis"
)

// LibLua holds the Lua functions shared by every script that appends to a channel; a script
// that appends is sent as LibLua followed by its own text. Packages built on channels (maps)
// use it for their own scripts.
//
//go:embed scripts/lib.lua
var LibLua string

//go:embed scripts/publish.lua
var publishLua string

//go:embed scripts/fetch.lua
var fetchLua string

var (
	publishScript = rueidis.NewLuaScript(LibLua + publishLua)
	fetchScript   = rueidis.NewLuaScriptReadOnly(fetchLua) // EVALSHA_RO: read-only users may subscribe
)
