-- fetch.lua reads a channel's epoch, head and up to COUNT log entries from a seq, atomically.
-- Read-only. See PROTOCOL.md, "Reading the log".
local meta = KEYS[1]
local log = KEYS[2]
local from = tonumber(ARGV[1])  -- first seq wanted
local count = tonumber(ARGV[2]) -- entries wanted, 0 for the head alone

local m = redis.call('HMGET', meta, 'epoch', 'seq')
if not m[1] then
  return {'', '0'}
end
local out = {m[1], m[2]}
if count > 0 then
  local entries = redis.call('XRANGE', log, string.format('%d-0', from), '+', 'COUNT', count)
  for _, entry in ipairs(entries) do
    local fields = entry[2]
    local data, t = '', '0'
    for i = 1, #fields, 2 do
      if fields[i] == 'd' then data = fields[i + 1]
      elseif fields[i] == 't' then t = fields[i + 1] end
    end
    out[#out + 1] = string.match(entry[1], '^(%d+)')
    out[#out + 1] = t
    out[#out + 1] = data
  end
end
return out
