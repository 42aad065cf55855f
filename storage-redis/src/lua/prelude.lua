-- aqm-storage-redis: helpers shared by every script.
-- Timestamps are canonical decimal u64 strings; they are compared exactly here (never as
-- doubles, which lose precision above 2^53).
local function le(a, b)
  if not (string.find(a, '^%d+$') and string.find(b, '^%d+$')) then
    error('aqm: corrupt timestamp')
  end
  if #a ~= #b then return #a < #b end
  local n = #a
  if n <= 15 then return tonumber(a) <= tonumber(b) end
  local ha, hb = tonumber(string.sub(a, 1, n - 10)), tonumber(string.sub(b, 1, n - 10))
  if ha ~= hb then return ha < hb end
  return tonumber(string.sub(a, n - 9)) <= tonumber(string.sub(b, n - 9))
end
-- Whether a timestamp is at or before a cutoff computed by the core's rule on the Rust side:
-- 'all' (every timestamp), 'none' (no timestamp) or a decimal.
local function past(ts, cutoff)
  if cutoff == 'all' then return true end
  if cutoff == 'none' then return false end
  return le(ts, cutoff)
end
-- The compare-and-swap rule of aqm_core::store::next_session_version: the version to write when
-- the stored one equals `expected` ('' = none stored), or nil on a conflict.
local function session_cas(key, expected)
  local current = redis.call('HGET', key, 'v')
  if (current or '') ~= expected then return nil end
  if not current then return '1' end
  if not string.find(current, '^%d+$') then error('aqm: corrupt session version') end
  return tostring(tonumber(current) + 1)
end
-- Touch keys before the first write (see scripts.rs): on a Redis Cluster node whose slot is being
-- migrated, a key it no longer (or does not yet) hold makes this call fail, and so the script,
-- before it has changed anything. Elsewhere it only reads.
local function touch(keys)
  for i = 1, #keys, 64 do
    redis.call('EXISTS', unpack(keys, i, math.min(i + 63, #keys)))
  end
end
-- Burn an ACTIVE entry (VaultEntry::burn's writes, decided by the caller): mark it BURNED with the
-- operation token, drop its secret now rather than at the end of the grace (it has no further
-- use), move it from its tier's active index to the burned one, move the counters, and drop a
-- last-resort key's opens (a burned key opens nothing more). Shared by vault_burn.lua and a
-- retiring open in vault_open.lua.
local function burn_entry(entry, opens, stats, burned_idx, active_idx, member, tier, now, op)
  redis.call('HSET', entry, 'status', 'BURNED', 'burned_at', now, 'burn_op', op)
  redis.call('HDEL', entry, 'encrypted_blob', 'encryption_iv', 'auth_tag')
  redis.call('ZREM', active_idx, member)
  redis.call('ZADD', burned_idx, now, member)
  redis.call('HINCRBY', stats, 'active_' .. string.lower(tier), -1)
  redis.call('HINCRBY', stats, 'total_burned', 1)
  redis.call('DEL', opens)
end
