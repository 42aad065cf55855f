-- Read-only: for each contact, its meta fields and its coins held per tier, as one snapshot.
-- KEYS: per contact: meta, index GOLD, index SILVER, index BRONZE
-- Returns per contact {rec, pt, last, gold, silver, bronze} (fields false when absent).
local out = {}
for i = 1, #KEYS, 4 do
  local m = redis.call('HMGET', KEYS[i], 'rec', 'pt', 'last')
  table.insert(out, {m[1], m[2], m[3],
    redis.call('ZCARD', KEYS[i + 1]), redis.call('ZCARD', KEYS[i + 2]), redis.call('ZCARD', KEYS[i + 3])})
end
return out
