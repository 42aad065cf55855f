-- Rename a format-v2 store (names without the hash tag) to format v3, in one atomic step.
-- Single-node Redis only (a v2 store never ran on a cluster).
-- KEYS: v3 stats, v3 contacts set (present: already upgraded)
-- ARGV: v2 name prefix ('alice:' or ''), the same glob-escaped, v3 name prefix ('{alice}:' or '')
-- Returns the number of keys renamed, or -1 if v3 keys already exist.
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then return -1 end
local found = {}
for _, family in ipairs({'vault', 'sess', 'pin', 'inv'}) do
  local cursor = '0'
  repeat
    local r = redis.call('SCAN', cursor, 'MATCH', ARGV[2] .. family .. ':v2:*', 'COUNT', 1000)
    cursor = r[1]
    for _, k in ipairs(r[2]) do found[k] = true end
  until cursor == '0'
end
local n = 0
for k in pairs(found) do
  local rest = string.sub(k, #ARGV[1] + 1)
  local renamed = string.gsub(rest, ':v2:', ':v3:', 1)
  redis.call('RENAME', k, ARGV[3] .. renamed)
  n = n + 1
end
return n
