-- lib.lua: functions shared by the scripts that append to a channel. Each script is sent to
-- Redis as lib.lua followed by its own text. See PROTOCOL.md.

-- channel_epoch returns the channel's epoch, and true when it had none: it then creates a new
-- history with newepoch (whatever log is left belongs to a lost history).
local function channel_epoch(meta, log, newepoch)
  local epoch = redis.call('HGET', meta, 'epoch')
  if epoch then
    return epoch, false
  end
  redis.call('DEL', log)
  redis.call('HSET', meta, 'epoch', newepoch, 'seq', 0)
  return newepoch, true
end

-- applied_seq returns the first seq of an earlier call with the same token in this epoch, or
-- nil: a retried call must not be applied twice. Any attempt may be the repeat, the first one
-- included: it can reach Redis after its own retry when its connection was held up.
local function applied_seq(idem, token, epoch)
  if token <= 0 then return nil end
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', idem, token, token)) do
    local e, s = string.match(member, '^(.*):(%d+)$')
    if e == epoch then return s end
  end
  return nil
end

-- now_ms returns Redis's clock in milliseconds, as a decimal string.
local function now_ms()
  local t = redis.call('TIME')
  return string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
end

-- envelope encodes data[1..n] (seqs first..first+n-1) as published and logged.
local function envelope(epoch, first, now, data)
  local lens = {}
  for i = 1, #data do lens[i] = #data[i] end
  return 'rs1 ' .. epoch .. ' ' .. string.format('%d', first) .. ' ' .. now .. ' ' ..
    #data .. ' ' .. table.concat(lens, ' ') .. '\n' .. table.concat(data)
end

-- append gives the n messages data[1..n] the next seqs and adds them to the log as one entry,
-- "<first>-0" holding the envelope (field e) and the time (field t), then trims the log. It
-- returns the first seq (a number) and the envelope.
local function append(meta, log, epoch, data, now, maxlen, maxage)
  local n = #data
  local last = redis.call('HINCRBY', meta, 'seq', n)
  local first = last - n + 1
  local env = envelope(epoch, first, now, data)
  redis.call('XADD', log, string.format('%d-0', first), 'e', env, 't', now)
  -- Retention by length, checked each time the head crosses a multiple of 256: drop the entries
  -- wholly below the newest maxlen messages.
  if maxlen > 0 and math.floor(last / 256) ~= math.floor((first - 1) / 256) and last > maxlen then
    local keep = redis.call('XREVRANGE', log, string.format('%d-0', last - maxlen + 1), '-', 'COUNT', 1)
    if keep[1] then
      redis.call('XTRIM', log, 'MINID', '~', keep[1][1])
    end
  end
  if maxage > 0 then
    -- Entries are in time order: drop expired ones from the oldest end, at most 100 a call.
    local cutoff = tonumber(now) - maxage
    local keep, expired = nil, nil
    for _, entry in ipairs(redis.call('XRANGE', log, '-', '+', 'COUNT', 100)) do
      local fields, t = entry[2], nil
      for i = 1, #fields, 2 do
        if fields[i] == 't' then t = tonumber(fields[i + 1]) end
      end
      if t and t >= cutoff then
        keep = entry[1]
        break
      end
      expired = entry[1]
    end
    if keep then
      redis.call('XTRIM', log, 'MINID', keep)
    elseif expired then
      redis.call('XTRIM', log, 'MINID', string.format('%d-0', last + 1))
    end
  end
  return first, env
end

-- remember_token records that the call with token appended from seq first, and renews the
-- set's expiry. Every 16th token it also forgets the producer's tokens below lowwater.
local function remember_token(idem, token, epoch, first, lowwater, ttl)
  if token <= 0 then return end
  redis.call('ZADD', idem, token, epoch .. ':' .. string.format('%d', first))
  redis.call('PEXPIRE', idem, ttl)
  if token % 16 == 1 then
    redis.call('ZREMRANGEBYSCORE', idem, '-inf', '(' .. lowwater)
  end
end
