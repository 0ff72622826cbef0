-- prune.lua: removes from the registry's index the nodes whose record has expired.
-- KEYS[1] is the index set P:{nodes}:index; KEYS[2..] the records P:{nodes}:node:ID of the
-- candidates; ARGV[i] the ID of KEYS[i+1]. A candidate is removed only if its record is still
-- absent, so a node that heartbeats meanwhile stays listed. Returns the number removed.
local index = KEYS[1]
local removed = 0
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    removed = removed + redis.call('SREM', index, ARGV[i - 1])
  end
end
return removed
