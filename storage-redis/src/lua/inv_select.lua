-- One step of a selection: pop the oldest coin of the first tier of the core's range
-- (TierRange::tiers) that holds one, and mark the contact active (Rust then asks
-- inventory::scan_step about the coin: a stale one stays deleted and Rust pops the next, putting
-- `last` back with inv_untouch if none is fresh).
-- KEYS: meta, then the indexes of the range's tiers in order
-- ARGV: coin key prefix, sealed last_msg_at (now)
-- Returns {-1} unregistered, {0} nothing left, or {1, tier position, member, seq, sealed coin
-- (false if missing), the `last` field before this step}.
-- Reads every key it writes first, then writes (scripts.rs).
touch(KEYS)
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
for i = 2, #KEYS do
  local head = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
  if #head > 0 then
    local ck = ARGV[1] .. head[1]
    local rec = redis.call('GET', ck)
    local before = redis.call('HGET', KEYS[1], 'last')
    redis.call('ZREM', KEYS[i], head[1])
    redis.call('DEL', ck)
    redis.call('HSET', KEYS[1], 'last', ARGV[2])
    return {1, i - 1, head[1], head[2], rec or false, before or false}
  end
end
return {0}
