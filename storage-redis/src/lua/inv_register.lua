-- Register a contact unless it is registered.
-- KEYS: meta, contacts set
-- ARGV: hashed contact id (the set's member), sealed record, priority token, sealed last_msg_at
touch(KEYS)
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'rec', ARGV[2], 'pt', ARGV[3], 'last', ARGV[4])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
