-- publish.lua appends messages to a channel's log and announces them on pub/sub, atomically.
-- See PROTOCOL.md, "Publish".
local meta = KEYS[1]       -- hash: epoch, seq
local log = KEYS[2]        -- stream: one entry per message, id "<seq>-0", fields d (data), t (ms)
local idem = KEYS[3]       -- sorted set of this producer's recent calls (score token, member "epoch:first")
local pubchan = ARGV[1]    -- pub/sub channel for the envelope
local pubcmd = ARGV[2]     -- PUBLISH or SPUBLISH
local newepoch = ARGV[3]   -- epoch to create when the channel has none
local token = tonumber(ARGV[4]) -- idempotency token of this call, 0 for none
local lowwater = ARGV[5]   -- tokens below it are settled and may be forgotten
local idemttl = ARGV[6]    -- ms to remember this producer's tokens
local maxlen = tonumber(ARGV[7]) -- keep at least this many entries, 0 for no limit
local maxage = tonumber(ARGV[8]) -- drop entries older than this many ms, 0 for no limit
local first_payload = 9
local n = #ARGV - first_payload + 1

local epoch = redis.call('HGET', meta, 'epoch')
if not epoch then
  -- A new history: whatever log is left belongs to a lost one.
  epoch = newepoch
  redis.call('DEL', log)
  redis.call('HSET', meta, 'epoch', epoch, 'seq', 0)
end

if token > 0 then
  local seen = redis.call('ZRANGEBYSCORE', idem, token, token)
  for _, member in ipairs(seen) do
    local e, s = string.match(member, '^(.*):(%d+)$')
    if e == epoch then
      return {epoch, s, '1'}
    end
  end
end

local first = redis.call('HINCRBY', meta, 'seq', n) - n + 1
local time = redis.call('TIME')
local now = string.format('%d', tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000))

local lens = {}
for i = 1, n do
  local data = ARGV[first_payload + i - 1]
  lens[i] = #data
  redis.call('XADD', log, string.format('%d-0', first + i - 1), 'd', data, 't', now)
end

if maxlen > 0 then
  redis.call('XTRIM', log, 'MAXLEN', '~', maxlen)
end
if maxage > 0 then
  -- Entries are in time order: drop expired ones from the head, a bounded number per call.
  local cutoff = tonumber(now) - maxage
  local head = redis.call('XRANGE', log, '-', '+', 'COUNT', 100)
  local keep = nil
  local last = nil
  for _, entry in ipairs(head) do
    local fields = entry[2]
    local t = nil
    for i = 1, #fields, 2 do
      if fields[i] == 't' then t = tonumber(fields[i + 1]) end
    end
    if t and t >= cutoff then
      keep = entry[1]
      break
    end
    last = entry[1]
  end
  if keep then
    redis.call('XTRIM', log, 'MINID', keep)
  elseif last then
    local s = tonumber(string.match(last, '^(%d+)'))
    redis.call('XTRIM', log, 'MINID', string.format('%d-0', s + 1))
  end
end

if token > 0 then
  redis.call('ZADD', idem, token, epoch .. ':' .. string.format('%d', first))
  redis.call('ZREMRANGEBYSCORE', idem, '-inf', '(' .. lowwater)
  redis.call('PEXPIRE', idem, idemttl)
end

local header = 'rs1 ' .. epoch .. ' ' .. string.format('%d', first) .. ' ' .. now .. ' ' .. n .. ' ' .. table.concat(lens, ' ') .. '\n'
redis.call(pubcmd, pubchan, header .. table.concat(ARGV, '', first_payload, first_payload + n - 1))
return {epoch, string.format('%d', first), '0'}
