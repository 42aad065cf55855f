-- Change a contact's priority and evict the newest coins above the new caps
-- (inventory::trim_plan), in one step.
-- KEYS: meta, index GOLD, index SILVER, index BRONZE
-- ARGV: the contact's token of the new priority, cap GOLD, cap SILVER, cap BRONZE (of the new priority), coin key prefix
-- Returns the evictions per tier, or {-1} if the contact is not registered.
-- Reads every index and coin it evicts first, then writes (scripts.rs).
touch(KEYS)
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local evicted = {0, 0, 0}
local plan = {}
for t = 2, 4 do
  local over = redis.call('ZCARD', KEYS[t]) - tonumber(ARGV[t])
  if over > 0 then
    local newest = redis.call('ZRANGE', KEYS[t], -over, -1)
    local coins = {}
    for _, id in ipairs(newest) do table.insert(coins, ARGV[5] .. id) end
    touch(coins)
    plan[t] = {newest, coins}
    evicted[t - 1] = over
  end
end
for t, p in pairs(plan) do
  redis.call('ZREM', KEYS[t], unpack(p[1]))
  redis.call('DEL', unpack(p[2]))
end
redis.call('HSET', KEYS[1], 'pt', ARGV[1])
return evicted
