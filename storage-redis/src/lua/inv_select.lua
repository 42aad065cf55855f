-- Pop the oldest fresh coin of the first tier of the core's range (TierRange::tiers) that holds
-- one, and mark the contact active when a coin is returned. Coins no longer fresh
-- (expires_at <= now + coin_min_life) met on the way are deleted and counted as wasted.
-- KEYS: meta, then the indexes of the range's tiers in order
-- ARGV: now, coin key prefix, freshness threshold (now + coin_min_life), then the tier names
-- Reads every index and coin it decides on first, then writes (scripts.rs).
touch(KEYS)
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local wasted = {}
local found = nil
for i = 2, #KEYS do
  local ids = redis.call('ZRANGE', KEYS[i], 0, -1)
  local gone = {}
  for _, id in ipairs(ids) do
    local ck = ARGV[2] .. id
    local f = redis.call('HMGET', ck, 'public_key', 'signature', 'seq', 'fetched_at', 'kind', 'expires_at')
    table.insert(gone, id)
    if f[6] and not le(f[6], ARGV[3]) then
      found = {1, 0, ARGV[i + 2], id, f[1], f[2], f[3], f[4], f[5], f[6]}
      break
    end
    table.insert(wasted, ck)
  end
  if #gone > 0 then redis.call('ZREM', KEYS[i], unpack(gone)) end
  if found then break end
end
-- Writes: the indexes above (each once), then the coins (each touched by HMGET above).
for _, ck in ipairs(wasted) do redis.call('DEL', ck) end
if found then
  redis.call('DEL', ARGV[2] .. found[4])
  redis.call('HSET', KEYS[1], 'last_msg_at', ARGV[1])
  found[2] = #wasted
  return found
end
return {0, #wasted}
