-- Drop every coin of one contact and downgrade it to STRANGER. With an expected `last` field (the
-- sealed last_msg_at), only if it is unchanged (the garbage collector decided on that snapshot with
-- inventory::is_inactive).
-- KEYS: meta, index GOLD, index SILVER, index BRONZE
-- ARGV: coin key prefix, expected `last` field or '', the contact's STRANGER token
-- Returns the coins dropped per tier, {-1} if unregistered, {-2} if last_msg_at moved.
-- Reads every index and coin it drops first, then writes (scripts.rs).
touch(KEYS)
local last = redis.call('HGET', KEYS[1], 'last')
if not last then return {-1} end
if ARGV[2] ~= '' and last ~= ARGV[2] then return {-2} end
local held = {0, 0, 0}
local coins = {}
for t = 2, 4 do
  local ids = redis.call('ZRANGE', KEYS[t], 0, -1)
  for _, id in ipairs(ids) do table.insert(coins, ARGV[1] .. id) end
  held[t - 1] = #ids
end
touch(coins)
for i = 1, #coins, 64 do redis.call('DEL', unpack(coins, i, math.min(i + 63, #coins))) end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
redis.call('HSET', KEYS[1], 'pt', ARGV[3])
return held
