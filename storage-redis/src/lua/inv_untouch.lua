-- Put back a contact's `last` field that a selection wrote before it found only stale coins,
-- unless it changed since (another selection's touch stands).
-- KEYS: meta
-- ARGV: the sealed last_msg_at the selection wrote, the one it replaced
touch(KEYS)
if redis.call('HGET', KEYS[1], 'last') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'last', ARGV[2])
return 1
