-- write.lua applies one atomic write to a map: it checks the guarded versions, updates the
-- state and its digest, and appends the change record to the map's channel as one message.
-- Sent after channel/scripts/lib.lua. See PROTOCOL.md, "Maps".
local meta = KEYS[1]              -- the channel's hash: epoch, seq; and the map's dx, dy, n
local log = KEYS[2]               -- the channel's log
local idem = KEYS[3]              -- the producer's recent calls
local state = KEYS[4]             -- hash: key -> "<version>:<value>"
local pubchan = ARGV[1]
local pubcmd = ARGV[2]
local id = ARGV[3]                -- names this call's log entry; the epoch if the map has none
local token = tonumber(ARGV[4])
local lowwater = ARGV[5]
local idemttl = ARGV[6]
local maxlen = tonumber(ARGV[7])
local maxage = tonumber(ARGV[8])
local first_op = 9                -- then four arguments per op: kind ("s" set, "d" delete),
local nops = (#ARGV - 8) / 4      -- key, value ("" for a delete), and the version the key must
                                  -- have ("" for any, "0" for absent, "e" for any but absent)
local LANE = 281474976710656      -- digest lanes are sums modulo 2^48

-- A key given twice would have its old pair taken out of the digest twice.
local keys = {}
for i = 1, nops do
  local key = ARGV[first_op + (i - 1) * 4 + 1]
  if keys[key] then
    return redis.error_reply('ERR key ' .. key .. ' appears twice in one write; nothing was written')
  end
  keys[key] = true
end

local acl = append_acl(meta, log, idem, token, pubcmd, pubchan)
acl[#acl + 1] = {'HSET', state, 'f', 'v'}
acl[#acl + 1] = {'HDEL', state, 'f'}
check_acl(acl)
local ch = channel_state(meta, log, 'map', id, maxlen, maxage)
local epoch = ch.epoch
if ch.fresh then
  redis.call('DEL', state)
  redis.call('HSET', meta, 'dx', '0', 'dy', '0', 'n', '0')
end
local seen = applied_seq(idem, token, epoch)
if seen then
  return {epoch, seen, 'dup'}
end

-- Every guard is checked before anything changes.
local old = {}
for i = 1, nops do
  local a = first_op + (i - 1) * 4
  local raw = redis.call('HGET', state, ARGV[a + 1])
  local ver = 0
  if raw then
    ver = tonumber(string.sub(raw, 1, string.find(raw, ':', 1, true) - 1))
  end
  old[i] = ver
  local want = ARGV[a + 3]
  if (want == 'e' and ver == 0) or (want ~= '' and want ~= 'e' and tonumber(want) ~= ver) then
    return {epoch, '0', 'conflict', tostring(i), string.format('%d', ver)}
  end
end

-- Deleting an absent key changes nothing and is left out of the record; a write that would
-- change nothing at all appends nothing.
local changes = 0
for i = 1, nops do
  if ARGV[first_op + (i - 1) * 4] == 's' or old[i] > 0 then changes = changes + 1 end
end
if changes == 0 then
  return {epoch, '0', 'notfound'}
end

local seq = ch.seq + 1
local sseq = string.format('%d', seq)
local d = redis.call('HMGET', meta, 'dx', 'dy', 'n')
local dx, dy, count = tonumber(d[1] or '0'), tonumber(d[2] or '0'), tonumber(d[3] or '0')

-- lanes returns the two 48-bit digest lanes of a (key, version) pair.
local function lanes(ver, key)
  local h = redis.sha1hex(string.format('%d', ver) .. ':' .. key)
  return tonumber(string.sub(h, 1, 12), 16), tonumber(string.sub(h, 13, 24), 16)
end

local heads, blobs = {}, {}
for i = 1, nops do
  local a = first_op + (i - 1) * 4
  local kind, key, val = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  if kind == 's' or old[i] > 0 then
    if old[i] > 0 then
      local x, y = lanes(old[i], key)
      dx, dy, count = (dx - x) % LANE, (dy - y) % LANE, count - 1
    end
    if kind == 's' then
      redis.call('HSET', state, key, sseq .. ':' .. val)
      local x, y = lanes(seq, key)
      dx, dy, count = (dx + x) % LANE, (dy + y) % LANE, count + 1
    else
      redis.call('HDEL', state, key)
    end
    heads[#heads + 1] = kind .. ' ' .. string.format('%d', old[i]) .. ' ' .. #key .. ' ' .. #val
    blobs[#blobs + 1] = key
    blobs[#blobs + 1] = val
  end
end
redis.call('HSET', meta, 'dx', string.format('%d', dx), 'dy', string.format('%d', dy), 'n', string.format('%d', count))

local record = 'm1 ' .. #heads .. ' ' .. table.concat(heads, ' ') .. '\n' .. table.concat(blobs)
local now = now_ms()
local first, env = append(meta, log, ch, id, {record}, now)
remember_token(idem, token, epoch, first, lowwater, idemttl)
redis.call(pubcmd, pubchan, env)
return {epoch, sseq, 'ok'}
