-- write.lua applies atomic writes to a map: for each, it checks the guarded versions, updates
-- the state and its digest, and appends the change record to the map's channel as one message.
-- One call carries one write, or a group of writes (group commit): the writes of a group are
-- applied in order, each on its own, as if each were a call of its own, and the records of
-- those applied go into one log entry, one seq each. Sent after lib.lua. See PROTOCOL.md,
-- "Maps".
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
-- Then one write: four arguments per op: kind ("s" set, "d" delete), key, value ("" for a
-- delete), and the version the key must have ("" for any, "0" for absent, "e" for any but
-- absent). Or a group: "g", then for each write its number of ops and its ops.
local LANE = 281474976710656      -- digest lanes are sums modulo 2^48

-- The writes: writes[w] = {first argument, number of ops}.
local writes, group = {}, ARGV[9] == 'g'
if group then
  local a = 10
  while a <= #ARGV do
    local n = tonumber(ARGV[a])
    if not n or n < 1 or a + 4 * n > #ARGV then
      return redis.error_reply('ERR malformed group of writes at argument ' .. a)
    end
    writes[#writes + 1] = {a + 1, n}
    a = a + 1 + 4 * n
  end
else
  writes[1] = {9, (#ARGV - 8) / 4}
end

-- A key given twice in one write would have its old pair taken out of the digest twice.
for w = 1, #writes do
  local keys = {}
  local first_op, nops = writes[w][1], writes[w][2]
  for i = 1, nops do
    local key = ARGV[first_op + (i - 1) * 4 + 1]
    if keys[key] then
      return redis.error_reply('ERR key ' .. key .. ' appears twice in one write; nothing was written')
    end
    keys[key] = true
  end
end

local acl = append_acl(meta, log, idem, token, pubcmd, pubchan)
acl[#acl + 1] = {'HSET', state, 'f', 'v'}
acl[#acl + 1] = {'HDEL', state, 'f'}
check_acl(acl)
local ch = channel_state(meta, log, 'map', id, maxlen, maxage)
local epoch = ch.epoch
if ch.fresh then
  redis.call('DEL', state)
end
local seen, recorded = applied_seq(idem, token, epoch)
if seen then
  if group then
    local out = {epoch, seen, 'group'}
    for r in string.gmatch(recorded or '', '[^,]+') do out[#out + 1] = (string.gsub(r, '%.', ' ')) end
    return out
  end
  return {epoch, seen, 'dup'}
end

-- lanes returns the two 48-bit digest lanes of a (key, version) pair.
local function lanes(ver, key)
  local h = redis.sha1hex(string.format('%d', ver) .. ':' .. key)
  return tonumber(string.sub(h, 1, 12), 16), tonumber(string.sub(h, 13, 24), 16)
end

local dx, dy, count = ch.dx, ch.dy, ch.count
local records, results = {}, {}

-- apply applies write w at seq (a number), or returns why not: "conflict I VER" (I 1-based)
-- or "notfound". Every guard is checked before anything changes.
local function apply(w, seq)
  local first_op, nops = writes[w][1], writes[w][2]
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
      return 'conflict ' .. i .. ' ' .. string.format('%d', ver)
    end
  end
  -- Deleting an absent key changes nothing and is left out of the record; a write that would
  -- change nothing at all appends nothing.
  local changes = 0
  for i = 1, nops do
    if ARGV[first_op + (i - 1) * 4] == 's' or old[i] > 0 then changes = changes + 1 end
  end
  if changes == 0 then
    return 'notfound'
  end
  local sseq = string.format('%d', seq)
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
  records[#records + 1] = 'm1 ' .. #heads .. ' ' .. table.concat(heads, ' ') .. '\n' .. table.concat(blobs)
  return 'ok'
end

for w = 1, #writes do
  results[w] = apply(w, ch.seq + #records + 1)
end

if #records == 0 then
  -- Nothing to append, so nothing to remember: a retry checks its guards again.
  if group then
    local out = {epoch, '0', 'group'}
    for w = 1, #writes do out[#out + 1] = results[w] end
    return out
  end
  local r = results[1]
  if r == 'notfound' then return {epoch, '0', 'notfound'} end
  local i, ver = string.match(r, '^conflict (%d+) (%d+)$')
  return {epoch, '0', 'conflict', i, ver}
end

local now = now_ms()
local n, counts, body = pack(records)
local first, env = append(meta, log, ch, id, n, counts, body, now,
  {'dx', string.format('%d', dx), 'dy', string.format('%d', dy), 'n', string.format('%d', count)})
local sfirst = string.format('%d', first)
if group then
  local coded = {}
  for w = 1, #writes do coded[w] = (string.gsub(results[w], ' ', '.')) end
  remember_token(idem, token, epoch, first, lowwater, idemttl, table.concat(coded, ','))
else
  remember_token(idem, token, epoch, first, lowwater, idemttl)
end
redis.call(pubcmd, pubchan, env)
if group then
  local out = {epoch, sfirst, 'group'}
  for w = 1, #writes do out[#out + 1] = results[w] end
  return out
end
return {epoch, sfirst, 'ok'}
