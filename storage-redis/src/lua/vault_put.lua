-- Store a fresh ACTIVE vault entry and count it, unless the key id exists.
-- KEYS: entry, stats, active index of the tier
-- ARGV: hashed key id (index member), tier, encrypted_blob, encryption_iv, auth_tag, created_at,
--       coin_version, stats field, operation token, expires_at, sealed key id, sealed coin kind
-- The token makes a resend after a lost reply answer like the first run (stored), instead of
-- "already exists" for the caller's own entry. The expiry index is scored by expires_at.
touch(KEYS)
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'put_op') == ARGV[9] then return 1 end
  return 0
end
redis.call('HSET', KEYS[1], 'id', ARGV[11], 'coin_category', ARGV[2], 'encrypted_blob', ARGV[3],
  'encryption_iv', ARGV[4], 'auth_tag', ARGV[5], 'status', 'ACTIVE', 'created_at', ARGV[6],
  'coin_version', ARGV[7], 'put_op', ARGV[9], 'expires_at', ARGV[10], 'kind', ARGV[12])
redis.call('ZADD', KEYS[3], ARGV[10], ARGV[1])
redis.call('HINCRBY', KEYS[2], ARGV[8], 1)
return 1
