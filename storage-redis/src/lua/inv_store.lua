-- Cache a coin if inventory::admit allows it, in the same step as the cap check.
-- KEYS: meta, coin, index of the coin's tier, sequence counter
-- ARGV: owner matches contact ('1'/'0'), then for BESTIE, MATE, STRANGER: the contact's priority
--       token and that priority's cap of this tier (computed by Rust from the policy), then the
--       coin's hashed name (index member), its sealed record, fresh ('1'/'0', Policy::coin_is_fresh
--       computed by the core), seq ('' = take the next; a number = put a selected coin back at its
--       FIFO place), cacheable kind ('1'/'0': '0' for a last-resort coin, which admit() never caches)
-- Returns {stored (1/0), priority (1..3 as above, 0 if unregistered, -1 for a token that is none
-- of the three), held, duplicate}: the snapshot the core's admit() is asked about when refused.
touch(KEYS)
local pt = redis.call('HGET', KEYS[1], 'pt')
local held = redis.call('ZCARD', KEYS[3])
local dup = redis.call('EXISTS', KEYS[2])
if not pt then return {0, 0, held, dup} end
local prio, cap = -1, nil
for i = 0, 2 do
  if pt == ARGV[2 + 2 * i] then prio, cap = i + 1, tonumber(ARGV[3 + 2 * i]) end
end
if prio < 0 then return {0, -1, held, dup} end
if ARGV[1] ~= '1' or ARGV[12] ~= '1' or dup == 1 or held >= cap or ARGV[10] ~= '1' then
  return {0, prio, held, dup}
end
local seq = ARGV[11]
if seq == '' then seq = redis.call('INCR', KEYS[4]) end
redis.call('SET', KEYS[2], ARGV[9])
redis.call('ZADD', KEYS[3], seq, ARGV[8])
return {1, prio, held, dup}
