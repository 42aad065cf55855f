-- Register a contact unless it is registered.
-- KEYS: meta, contacts set
-- ARGV: contact_id, priority, last_msg_at, display_name, require_pq ('1'/'0')
touch(KEYS)
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'contact_id', ARGV[1], 'priority', ARGV[2], 'last_msg_at', ARGV[3],
  'display_name', ARGV[4], 'require_pq', ARGV[5])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
