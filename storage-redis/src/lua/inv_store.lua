-- Cache a coin if inventory::admit allows it, in the same step as the cap check.
-- KEYS: meta, coin hash, index of the coin's tier, sequence counter
-- ARGV: owner matches contact ('1'/'0'), cap BESTIE, cap MATE, cap STRANGER (of this tier),
--       contact_id, key_id, tier, public_key, signature, fetched_at, kind, expires_at,
--       fresh ('1'/'0', Policy::coin_is_fresh computed by the core), seq ('' = take the next;
--       a number = put a selected coin back at its FIFO place)
-- Returns {stored (1/0), priority ('' if unregistered), held, duplicate}: the snapshot the core's
-- admit() is asked about when the coin is refused.
touch(KEYS)
local prio = redis.call('HGET', KEYS[1], 'priority')
local held = redis.call('ZCARD', KEYS[3])
local dup = redis.call('EXISTS', KEYS[2])
if not prio then return {0, '', held, dup} end
local cap = ({BESTIE = tonumber(ARGV[2]), MATE = tonumber(ARGV[3]), STRANGER = tonumber(ARGV[4])})[prio]
if ARGV[1] ~= '1' or dup == 1 or cap == nil or held >= cap or ARGV[13] ~= '1' then
  return {0, prio, held, dup}
end
local seq = ARGV[14]
if seq == '' then seq = redis.call('INCR', KEYS[4]) end
redis.call('HSET', KEYS[2], 'contact_id', ARGV[5], 'key_id', ARGV[6], 'coin_category', ARGV[7],
  'public_key', ARGV[8], 'signature', ARGV[9], 'fetched_at', ARGV[10], 'seq', seq,
  'kind', ARGV[11], 'expires_at', ARGV[12])
redis.call('ZADD', KEYS[3], seq, ARGV[6])
return {1, prio, held, dup}
