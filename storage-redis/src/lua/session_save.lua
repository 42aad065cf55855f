-- Save a session record if its version is still the one the caller loaded
-- (aqm_core::store::next_session_version).
-- KEYS: session hash
-- ARGV: expected version ('' = create only if absent), sealed blob, operation token
-- Returns the new version, or 'conflict' (nothing written). The token makes a resend after a lost
-- reply answer like the first run.
touch(KEYS)
if redis.call('HGET', KEYS[1], 'op') == ARGV[3] then return redis.call('HGET', KEYS[1], 'v') end
local version = session_cas(KEYS[1], ARGV[1])
if not version then return 'conflict' end
redis.call('HSET', KEYS[1], 'v', version, 'blob', ARGV[2], 'op', ARGV[3])
return version
