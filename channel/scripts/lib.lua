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
-- nil: a retried call must not be applied twice.
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

-- append gives the n messages data[1..n] the next seqs, adds them to the log and trims it.
-- It returns the first seq (a number).
local function append(meta, log, data, now, maxlen, maxage)
  local n = #data
  local first = redis.call('HINCRBY', meta, 'seq', n) - n + 1
  for i = 1, n do
    redis.call('XADD', log, string.format('%d-0', first + i - 1), 'd', data[i], 't', now)
  end
  if maxlen > 0 then
    redis.call('XTRIM', log, 'MAXLEN', '~', maxlen)
  end
  if maxage > 0 then
    -- Entries are in time order: drop expired ones from the oldest end, at most 100 a call.
    local cutoff = tonumber(now) - maxage
    local keep, last = nil, nil
    for _, entry in ipairs(redis.call('XRANGE', log, '-', '+', 'COUNT', 100)) do
      local fields, t = entry[2], nil
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
      redis.call('XTRIM', log, 'MINID', string.format('%d-0', tonumber(string.match(last, '^(%d+)')) + 1))
    end
  end
  return first
end

-- remember_token records that the call with token appended from seq first, and forgets the
-- producer's tokens below lowwater.
local function remember_token(idem, token, epoch, first, lowwater, ttl)
  if token <= 0 then return end
  redis.call('ZADD', idem, token, epoch .. ':' .. string.format('%d', first))
  redis.call('ZREMRANGEBYSCORE', idem, '-inf', '(' .. lowwater)
  redis.call('PEXPIRE', idem, ttl)
end

-- announce publishes one envelope carrying data[1..n] (seqs first..first+n-1).
local function announce(pubcmd, pubchan, epoch, first, now, data)
  local lens = {}
  for i = 1, #data do lens[i] = #data[i] end
  local header = 'rs1 ' .. epoch .. ' ' .. string.format('%d', first) .. ' ' .. now .. ' ' ..
    #data .. ' ' .. table.concat(lens, ' ') .. '\n'
  redis.call(pubcmd, pubchan, header .. table.concat(data))
end
