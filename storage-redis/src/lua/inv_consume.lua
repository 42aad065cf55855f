-- Remove one cached coin (error recovery).
-- KEYS: coin hash, index GOLD, index SILVER, index BRONZE
-- ARGV: the coin's hashed name (index member)
touch(KEYS)
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('DEL', KEYS[1])
for t = 2, 4 do redis.call('ZREM', KEYS[t], ARGV[1]) end
return 1
