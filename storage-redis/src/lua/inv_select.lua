-- Pop the oldest fresh coin of the first tier of the core's range (TierRange::tiers) that holds
-- one, and mark the contact active when a coin is returned. Coins no longer fresh
-- (expires_at <= now + coin_min_life) met on the way are deleted and counted as wasted.
-- KEYS: meta, then the indexes of the range's tiers in order
-- ARGV: now, coin key prefix, freshness threshold (now + coin_min_life), then the tier names
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local wasted = 0
for i = 2, #KEYS do
  while true do
    local popped = redis.call('ZPOPMIN', KEYS[i])
    if #popped == 0 then break end
    local id = popped[1]
    local ck = ARGV[2] .. id
    local f = redis.call('HMGET', ck, 'public_key', 'signature', 'seq', 'fetched_at', 'kind', 'expires_at')
    redis.call('DEL', ck)
    if f[6] and not le(f[6], ARGV[3]) then
      redis.call('HSET', KEYS[1], 'last_msg_at', ARGV[1])
      return {1, wasted, ARGV[i + 2], id, f[1], f[2], f[3], f[4], f[5], f[6]}
    end
    wasted = wasted + 1
  end
end
return {0, wasted}
