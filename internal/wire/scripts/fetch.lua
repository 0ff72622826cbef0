-- fetch.lua reads a channel's epoch, head and tip (the id of the newest entry), and the log entries that hold seqs from FROM on,
-- atomically: up to COUNT entries, stopping early past BUDGET bytes. Read-only. With KIND, a
-- name that holds another kind is an error "WRONGKIND <its kind>".
-- See PROTOCOL.md, "Reading the log".
local meta = KEYS[1]
local log = KEYS[2]
local from = tonumber(ARGV[1])   -- first seq wanted
local count = tonumber(ARGV[2])  -- entries wanted, 0 for the head alone
local budget = tonumber(ARGV[3]) -- stop after this many bytes of envelopes
local kind = ARGV[4]             -- optional: "channel" or "map", the kind the reader expects

local m = redis.call('HMGET', meta, 'epoch', 'seq', 'kind', 'tip')
if kind and kind ~= '' and m[3] and m[3] ~= kind then
  return redis.error_reply('WRONGKIND ' .. m[3])
end
if not m[1] then
  return {'', '0', '-'}
end
local out = {m[1], m[2], m[4] or '-'}
if count > 0 then
  -- The entry holding seq from starts at or before it.
  local start = string.format('%d-0', from)
  local before = redis.call('XREVRANGE', log, start, '-', 'COUNT', 1)
  if before[1] then
    start = before[1][1]
  end
  local size = 0
  for _, entry in ipairs(redis.call('XRANGE', log, start, '+', 'COUNT', count)) do
    local fields = entry[2]
    for i = 1, #fields, 2 do
      if fields[i] == 'e' then
        out[#out + 1] = fields[i + 1]
        size = size + #fields[i + 1]
      end
    end
    if size >= budget then break end
  end
end
return out
