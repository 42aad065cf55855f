-- Commit a last-resort open that the core decided (VaultEntry::open_last_resort, run by the caller
-- on the entry and opens it read), if nothing changed since that read; optionally save the
-- receive session with it.
-- KEYS: entry, the entry's opens, stats, burned index, active GOLD, active SILVER, active BRONZE,
--       [session hash]
-- ARGV: hashed key id (index member), now, operation token, the opens record read ('' = none),
--       the opens record to write ('' = this open retires the key),
--       [session blob, expected session version ('' = create only if absent)]
-- Returns 'ok', 'changed' (the entry or its opens moved since the read: nothing written, read and
-- decide again) or 'conflict' (stale session version: nothing written). The token makes a resend
-- after a lost reply answer like the first run: it is kept in the opens, in the retired entry's
-- burn_op and in the session.
-- Only ACTIVE entries open, and an ACTIVE entry's fields never change but for its status: so the
-- status and the opens, compared here, are everything the decision read.
touch(KEYS)
local e = redis.call('HMGET', KEYS[1], 'status', 'coin_category', 'burn_op')
if e[3] and e[3] == ARGV[3] then return 'ok' end
local o = redis.call('HMGET', KEYS[2], 'rec', 'op')
if o[2] and o[2] == ARGV[3] then return 'ok' end
if #KEYS >= 8 and redis.call('HGET', KEYS[8], 'op') == ARGV[3] then return 'ok' end
if e[1] ~= 'ACTIVE' then return 'changed' end
if (o[1] or '') ~= ARGV[4] then return 'changed' end
local idx = ({GOLD = KEYS[5], SILVER = KEYS[6], BRONZE = KEYS[7]})[e[2]]
if not idx then error('aqm: corrupt vault entry') end
local version = nil
if #KEYS >= 8 then
  version = session_cas(KEYS[8], ARGV[7])
  if not version then return 'conflict' end
end
if ARGV[5] == '' then
  -- Retired by a full record: exactly the burn's writes, opens dropped.
  burn_entry(KEYS[1], KEYS[2], KEYS[3], KEYS[4], idx, ARGV[1], e[2], ARGV[2], ARGV[3])
else
  redis.call('HSET', KEYS[2], 'rec', ARGV[5], 'op', ARGV[3])
end
if version then redis.call('HSET', KEYS[8], 'v', version, 'blob', ARGV[6], 'op', ARGV[3]) end
return 'ok'
