-- get.lua reads one key of a map together with its channel's epoch and head, atomically.
-- Read-only. See PROTOCOL.md, "Maps".
local meta = KEYS[1]
local state = KEYS[2]
local key = ARGV[1]
local m = redis.call('HMGET', meta, 'epoch', 'seq')
return {m[1] or '', m[2] or '0', redis.call('HGET', state, key)}
