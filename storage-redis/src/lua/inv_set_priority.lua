-- Change a contact's priority and evict the newest coins above the new caps
-- (inventory::trim_plan), in one step.
-- KEYS: meta, index GOLD, index SILVER, index BRONZE
-- ARGV: new priority, cap GOLD, cap SILVER, cap BRONZE (of the new priority), coin key prefix
-- Returns the evictions per tier, or {-1} if the contact is not registered.
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local evicted = {0, 0, 0}
for t = 2, 4 do
  local over = redis.call('ZCARD', KEYS[t]) - tonumber(ARGV[t])
  if over > 0 then
    local popped = redis.call('ZPOPMAX', KEYS[t], over)
    for i = 1, #popped, 2 do redis.call('DEL', ARGV[5] .. popped[i]) end
    evicted[t - 1] = over
  end
end
redis.call('HSET', KEYS[1], 'priority', ARGV[1])
return evicted
