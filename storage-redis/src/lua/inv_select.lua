-- Pop the oldest coin of the first non-empty tier, in the fallback order the core gives
-- (inventory::pick_tier), and mark the contact active. An empty result changes nothing.
-- KEYS: meta, then the indexes of the fallback tiers in order
-- ARGV: now, coin key prefix, then the tier names in the same order
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
for i = 2, #KEYS do
  local popped = redis.call('ZPOPMIN', KEYS[i])
  if #popped > 0 then
    local id = popped[1]
    local ck = ARGV[2] .. id
    local f = redis.call('HMGET', ck, 'public_key', 'signature', 'seq', 'fetched_at')
    redis.call('DEL', ck)
    redis.call('HSET', KEYS[1], 'last_msg_at', ARGV[1])
    return {1, ARGV[i + 1], id, f[1], f[2], f[3], f[4]}
  end
end
return {0}
