-- heads.lua reads the epoch, head and tip of every channel whose meta hash is one of KEYS:
-- three values per key, in order; "", "0", "-" for a channel without history. Read-only.
-- See PROTOCOL.md, "Subscribing" (idle checks).
local out = {}
for i = 1, #KEYS do
  local m = redis.call('HMGET', KEYS[i], 'epoch', 'seq', 'tip')
  if m[1] then
    out[#out + 1] = m[1]
    out[#out + 1] = m[2] or '0'
    out[#out + 1] = m[3] or '-'
  else
    out[#out + 1] = ''
    out[#out + 1] = '0'
    out[#out + 1] = '-'
  end
end
return out
