package channel

import (
	_ "embed"

	"github.com/redis/rueidis"
)

//go:embed scripts/publish.lua
var publishLua string

//go:embed scripts/fetch.lua
var fetchLua string

var (
	publishScript = rueidis.NewLuaScript(publishLua)
	fetchScript   = rueidis.NewLuaScript(fetchLua)
)
