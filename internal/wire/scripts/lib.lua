-- lib.lua: functions shared by the scripts that append to a channel. Each script is sent to
-- Redis as lib.lua followed by its own text. See PROTOCOL.md.

-- check_acl fails, before anything is written, when the calling user may not run one of the
-- commands in cmds (each {COMMAND, key or channel, more arguments}): a command denied halfway
-- through the script would leave a partial write. Servers without redis.acl_check_cmd (before
-- Redis 7, the embedded demo server) skip the check.
local function check_acl(cmds)
  if not redis.acl_check_cmd then return end
  for _, c in ipairs(cmds) do
    if not redis.acl_check_cmd(unpack(c)) then
      error({err = 'NOPERM this user may not run ' .. c[1] .. ' on ' .. c[2] .. '; nothing was written'})
    end
  end
end

-- append_acl returns the commands an append to a channel runs, for check_acl.
local function append_acl(meta, log, idem, token, pubcmd, pubchan)
  local cmds = {{'HSET', meta, 'f', 'v'}, {'XADD', log, '1-0', 'f', 'v'}, {'XTRIM', log, 'MINID', '0'},
    {string.upper(pubcmd), pubchan, 'm'}}
  if token > 0 then
    cmds[#cmds + 1] = {'ZADD', idem, '0', 'm'}
    cmds[#cmds + 1] = {'PEXPIRE', idem, '1'}
  end
  return cmds
end

-- channel_state checks that the name holds kind ("channel" or "map") and returns the state of
-- its log: epoch, fresh (it had no epoch), seq (the head), tip (the id of the newest entry, "-"
-- when unknown) and the retention stored with it (maxlen messages, maxage ms; 0: no limit); for
-- a map also its digest (dx, dy, count). A channel without an epoch starts a new history whose
-- epoch is id (whatever log is left belongs to a lost history; a map's digest starts at 0). A
-- channel without a stored kind or retention adopts kind and the caller's maxlen and maxage.
-- Nothing is written before the kind is checked.
local function channel_state(meta, log, kind, id, maxlen, maxage)
  local m = redis.call('HMGET', meta, 'epoch', 'kind', 'maxlen', 'maxage', 'seq', 'tip', 'dx', 'dy', 'n')
  if m[2] and m[2] ~= kind then
    error({err = 'WRONGKIND ' .. m[2]})
  end
  local ch = {epoch = m[1], fresh = false, seq = tonumber(m[5] or '0'), tip = m[6] or '-',
    maxlen = maxlen, maxage = maxage,
    dx = tonumber(m[7] or '0'), dy = tonumber(m[8] or '0'), count = tonumber(m[9] or '0')}
  local set = {}
  if not ch.epoch then
    redis.call('DEL', log)
    ch.epoch, ch.fresh, ch.seq, ch.tip = id, true, 0, '-'
    set[#set + 1] = 'epoch'; set[#set + 1] = id
    set[#set + 1] = 'seq'; set[#set + 1] = '0'
    set[#set + 1] = 'tip'; set[#set + 1] = '-'
    if kind == 'map' then
      ch.dx, ch.dy, ch.count = 0, 0, 0
      set[#set + 1] = 'dx'; set[#set + 1] = '0'
      set[#set + 1] = 'dy'; set[#set + 1] = '0'
      set[#set + 1] = 'n'; set[#set + 1] = '0'
    end
  end
  if not m[2] then
    set[#set + 1] = 'kind'; set[#set + 1] = kind
  end
  if m[3] and m[4] then
    ch.maxlen, ch.maxage = tonumber(m[3]), tonumber(m[4])
  else
    set[#set + 1] = 'maxlen'; set[#set + 1] = string.format('%d', maxlen)
    set[#set + 1] = 'maxage'; set[#set + 1] = string.format('%d', maxage)
  end
  if #set > 0 then
    redis.call('HSET', meta, unpack(set))
  end
  return ch
end

-- applied_seq returns the first seq of an earlier call with the same token in this epoch, and
-- the outcomes it recorded (a group of map writes), or nil: a retried call must not be applied
-- twice. Any attempt may be the repeat, the first one included: it can reach Redis after its
-- own retry when its connection was held up.
local function applied_seq(idem, token, epoch)
  if token <= 0 then return nil end
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', idem, token, token)) do
    local e, s, rest = string.match(member, '^([^:/]*):(%d+)/(.*)$')
    if not e then
      e, s = string.match(member, '^(.*):(%d+)$')
    end
    if e == epoch then return s, rest end
  end
  return nil
end

-- now_ms returns Redis's clock in milliseconds, as a decimal string.
local function now_ms()
  local t = redis.call('TIME')
  return string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
end

-- pack returns what append takes for the messages data[1..n]: n, their lengths as the
-- envelope's header writes them ("n l1 … ln"), and the messages concatenated.
local function pack(data)
  local lens = {#data}
  for i = 1, #data do lens[i + 1] = #data[i] end
  return #data, table.concat(lens, ' '), table.concat(data)
end

-- envelope encodes n messages (seqs first..first+n-1), given as counts ("n l1 … ln") and body
-- (the messages concatenated), as published and logged, in the entry named id that follows the
-- entry named prev.
local function envelope(epoch, first, now, id, prev, counts, body)
  return 'rs2 ' .. epoch .. ' ' .. string.format('%d', first) .. ' ' .. now .. ' ' .. id .. ' ' ..
    prev .. ' ' .. counts .. '\n' .. body
end

-- append gives n messages (counts and body as for envelope) the next seqs and adds them to the
-- log of channel ch (from channel_state) as one entry "<first>-0" named id, holding the
-- envelope (field e) and the time (field t); moves the head and the tip to it; then trims the
-- log. The fields and values in more (a list, or nil) are set in meta along with the head. It
-- returns the first seq (a number) and the envelope.
local function append(meta, log, ch, id, n, counts, body, now, more)
  local first, last = ch.seq + 1, ch.seq + n
  local env = envelope(ch.epoch, first, now, id, ch.tip, counts, body)
  redis.call('XADD', log, string.format('%d-0', first), 'e', env, 't', now)
  redis.call('HSET', meta, 'seq', string.format('%d', last), 'tip', id, unpack(more or {}))
  ch.seq, ch.tip = last, id
  local maxlen, maxage = ch.maxlen, ch.maxage
  -- Retention by length, checked each time the head crosses a multiple of 256: drop the entries
  -- wholly below the newest maxlen messages.
  if maxlen > 0 and math.floor(last / 256) ~= math.floor((first - 1) / 256) and last > maxlen then
    local keep = redis.call('XREVRANGE', log, string.format('%d-0', last - maxlen + 1), '-', 'COUNT', 1)
    if keep[1] then
      redis.call('XTRIM', log, 'MINID', '~', keep[1][1])
    end
  end
  if maxage > 0 then
    -- Entries are in time order: drop the expired ones from the oldest end, at most 100 a call.
    -- The entry just appended is never expired.
    local cutoff = tonumber(now) - maxage
    local expired = nil
    for _, entry in ipairs(redis.call('XRANGE', log, '-', '+', 'COUNT', 100)) do
      local fields, t = entry[2], nil
      for i = 1, #fields, 2 do
        if fields[i] == 't' then t = tonumber(fields[i + 1]) end
      end
      if not t or t >= cutoff then break end
      expired = entry[1]
    end
    if expired then
      -- Entry ids are "<first seq>-0": "<first seq>-1" is above the last expired entry and
      -- below every entry after it.
      redis.call('XTRIM', log, 'MINID', (string.gsub(expired, '-%d+$', '-1')))
    end
  end
  return first, env
end

-- remember_token records that the call with token appended from seq first (with outcomes, the
-- outcomes of a group of map writes: "ok", "conflict.I.VER" or "notfound", joined by commas),
-- and renews the set's expiry. Every 16th token it also forgets the producer's tokens below
-- lowwater.
local function remember_token(idem, token, epoch, first, lowwater, ttl, outcomes)
  if token <= 0 then return end
  local member = epoch .. ':' .. string.format('%d', first)
  if outcomes then member = member .. '/' .. outcomes end
  redis.call('ZADD', idem, token, member)
  redis.call('PEXPIRE', idem, ttl)
  if token % 16 == 1 then
    redis.call('ZREMRANGEBYSCORE', idem, '-inf', '(' .. lowwater)
  end
end
