-- publish.lua appends messages to a channel's log and announces them on pub/sub, atomically.
-- Sent after lib.lua. See PROTOCOL.md, "Publishing".
local meta = KEYS[1]              -- hash: epoch, seq
local log = KEYS[2]               -- stream: one entry "<first seq>-0" per call, fields e, t
local idem = KEYS[3]              -- sorted set of this producer's recent calls
local pubchan = ARGV[1]           -- pub/sub channel for the envelope
local pubcmd = ARGV[2]            -- PUBLISH or SPUBLISH
local id = ARGV[3]                -- names this call's log entry; the epoch if the channel has none
local token = tonumber(ARGV[4])   -- idempotency token of this call, 0 for none
local lowwater = ARGV[5]          -- the producer's tokens below it cannot reach Redis any more
local idemttl = ARGV[6]           -- ms to remember the producer's tokens
local maxlen = tonumber(ARGV[7])  -- retention for a channel that has none stored: messages kept,
local maxage = tonumber(ARGV[8])  -- and ms; 0 for no limit
local counts = ARGV[9]            -- "n l1 … ln": how many messages, and the length of each
local body = ARGV[10]             -- the messages, concatenated
if pubcmd ~= 'PUBLISH' and pubcmd ~= 'SPUBLISH' then
  return redis.error_reply('ERR PUBCMD must be PUBLISH or SPUBLISH, not ' .. tostring(pubcmd))
end
-- The envelope takes the caller's counts as they are, so they must describe body exactly: a
-- log entry that does not parse would stop every subscriber that reaches it.
local n, k, total = nil, 0, 0
if #ARGV == 10 and string.find(counts, '^[1-9]%d* [%d ]*%d$') and not string.find(counts, '  ', 1, true) then
  n = tonumber(string.match(counts, '^%d+'))
  for l in string.gmatch(counts, '%d+') do total = total + l; k = k + 1 end
end
if not n or k ~= n + 1 or total - n ~= #body then
  return redis.error_reply('ERR publish takes COUNTS ("n l1 ... ln", lengths adding up to the bytes of DATA) and DATA after MAXAGE; nothing was written')
end

check_acl(append_acl(meta, log, idem, token, pubcmd, pubchan))
local ch = channel_state(meta, log, 'channel', id, maxlen, maxage)
local epoch = ch.epoch
local seen = applied_seq(idem, token, epoch)
if seen then
  return {epoch, seen, '1'}
end
local now = now_ms()
local first, env = append(meta, log, ch, id, n, counts, body, now)
remember_token(idem, token, epoch, first, lowwater, idemttl)
redis.call(pubcmd, pubchan, env)
return {epoch, string.format('%d', first), '0'}
