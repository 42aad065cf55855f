-- Burn an ACTIVE entry exactly once (VaultEntry::burn), optionally saving a session with it.
-- KEYS: entry, stats, burned index, active GOLD, active SILVER, active BRONZE, the entry's opens,
--       [session hash]
-- ARGV: hashed key id (index member), now, deadline cutoff (expires_at at or before it: past the vault grace),
--       operation token, [session blob, expected session version ('' = create only if absent)]
-- The token makes a resend after a lost reply answer like the first run (burned, session saved),
-- instead of "already burned" for the caller's own burn. With a session, both halves are decided
-- before either is written: a stale version ('conflict') burns nothing. A burned key opens nothing
-- more, so a last-resort key's opens go with the burn.
touch(KEYS)
local e = redis.call('HMGET', KEYS[1], 'status', 'expires_at', 'coin_category', 'burn_op')
if not e[1] then return 'missing' end
if e[1] == 'BURNED' then
  if e[4] == ARGV[4] then return 'ok' end
  return 'burned'
end
local idx = ({GOLD = KEYS[4], SILVER = KEYS[5], BRONZE = KEYS[6]})[e[3]]
if e[1] ~= 'ACTIVE' or not e[2] or not idx then error('aqm: corrupt vault entry') end
if past(e[2], ARGV[3]) then return 'expired' end
local version = nil
if #KEYS >= 8 then
  version = session_cas(KEYS[8], ARGV[6])
  if not version then return 'conflict' end
end
burn_entry(KEYS[1], KEYS[7], KEYS[2], KEYS[3], idx, ARGV[1], e[3], ARGV[2], ARGV[4])
if version then redis.call('HSET', KEYS[8], 'v', version, 'blob', ARGV[5], 'op', ARGV[4]) end
return 'ok'
