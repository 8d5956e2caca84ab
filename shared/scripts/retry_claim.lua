-- Claim due retries: move them from the due set into the in-flight set with a lease deadline, and return
-- their payloads. In-flight entries whose lease has lapsed (a scheduler died before acking) are due again.
-- KEYS[1] due zset, KEYS[2] in-flight zset
-- ARGV: now_ms, lease_until_ms, limit, payload key prefix
-- Returns a flat list {id, payload, id, payload, ...} (payload '' when it has gone missing)
local now = tonumber(ARGV[1])
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(lapsed) do
  redis.call('ZREM', KEYS[2], id)
  if not redis.call('ZSCORE', KEYS[1], id) then redis.call('ZADD', KEYS[1], now, id) end
end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], ARGV[2], id)
  table.insert(out, id)
  table.insert(out, redis.call('GET', ARGV[4] .. id) or '')
end
return out
