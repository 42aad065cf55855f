-- Read-only: for each contact, its meta fields and its coins held per tier, as one snapshot.
-- KEYS: per contact: meta, index GOLD, index SILVER, index BRONZE
-- Returns per contact {priority, last_msg_at, display_name, require_pq, gold, silver, bronze}
-- (fields false when absent).
local out = {}
for i = 1, #KEYS, 4 do
  local m = redis.call('HMGET', KEYS[i], 'priority', 'last_msg_at', 'display_name', 'require_pq')
  table.insert(out, {m[1], m[2], m[3], m[4],
    redis.call('ZCARD', KEYS[i + 1]), redis.call('ZCARD', KEYS[i + 2]), redis.call('ZCARD', KEYS[i + 3])})
end
return out
