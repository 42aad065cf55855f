-- One batch of the purge (VaultEntry::purge_action): expire ACTIVE entries past
-- expires_at + vault grace (counted as expired) and delete BURNED entries past the burn grace.
-- Decides for the whole batch (reading every entry it removes), then writes (scripts.rs).
-- KEYS: stats, burned index, active GOLD, active SILVER, active BRONZE
-- ARGV: deadline cutoff (on expires_at), grace cutoff (on burned_at), batch limit, entry key prefix,
--       opens key prefix (a removed last-resort entry's opens go with it)
touch(KEYS)
local limit = tonumber(ARGV[3])
local function bound(c) if c == 'all' then return '+inf' end return c end
local fields = {'active_gold', 'active_silver', 'active_bronze'}
local expire, delete, full = {}, {}, 0
if ARGV[1] ~= 'none' then
  for t = 3, 5 do
    local ids = redis.call('ZRANGEBYSCORE', KEYS[t], '-inf', bound(ARGV[1]), 'LIMIT', 0, limit)
    if #ids == limit then full = 1 end
    for _, id in ipairs(ids) do
      local expires = redis.call('HGET', ARGV[4] .. id, 'expires_at')
      redis.call('EXISTS', ARGV[5] .. id) -- touched before the first write (scripts.rs)
      -- An index entry without its hash (never written by this crate) is gone: count it.
      if (not expires) or past(expires, ARGV[1]) then table.insert(expire, {t, id}) end
    end
  end
end
if ARGV[2] ~= 'none' then
  local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', bound(ARGV[2]), 'LIMIT', 0, limit)
  if #ids == limit then full = 1 end
  for _, id in ipairs(ids) do
    local at = redis.call('HGET', ARGV[4] .. id, 'burned_at')
    redis.call('EXISTS', ARGV[5] .. id)
    if (not at) or past(at, ARGV[2]) then table.insert(delete, id) end
  end
end
for _, x in ipairs(expire) do
  redis.call('DEL', ARGV[4] .. x[2], ARGV[5] .. x[2])
  redis.call('ZREM', KEYS[x[1]], x[2])
  redis.call('HINCRBY', KEYS[1], fields[x[1] - 2], -1)
  redis.call('HINCRBY', KEYS[1], 'total_expired', 1)
end
for _, id in ipairs(delete) do
  redis.call('DEL', ARGV[4] .. id, ARGV[5] .. id)
  redis.call('ZREM', KEYS[2], id)
end
return {#expire, #delete, full}
