-- mark.lua records, in the meta hash KEYS[1], that the history of epoch ARGV[1] parted at seq
-- ARGV[2]: a subscription found that messages it had delivered from there on are no longer in
-- the log (a failover lost them, and their seqs were given to other messages). The field
-- "parted" holds "EPOCH SEQ MS": the lowest such seq of the current epoch, and when it was last
-- marked (Redis's clock). A start after a position with no entry id reads it (PROTOCOL.md,
-- section 5). Nothing is written for another epoch than the channel's.
local meta = KEYS[1]
local epoch, seq = ARGV[1], tonumber(ARGV[2])
if redis.call('HGET', meta, 'epoch') ~= epoch then
  return 0
end
local t = redis.call('TIME')
local now = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local cur = redis.call('HGET', meta, 'parted')
if cur then
  local e, s = string.match(cur, '^(%S+) (%d+) ')
  if e == epoch and tonumber(s) < seq then
    seq = tonumber(s)
  end
end
redis.call('HSET', meta, 'parted', epoch .. ' ' .. string.format('%d', seq) .. ' ' .. now)
return 1
