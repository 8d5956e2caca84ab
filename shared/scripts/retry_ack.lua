-- Acknowledge claimed retries that were sent: drop them from the in-flight set, and their payloads, but only
-- while the claim is still this scheduler's (same lease deadline) and the id was not rescheduled meanwhile.
-- KEYS[1] due zset, KEYS[2] in-flight zset
-- ARGV: lease_until_ms, payload key prefix, id...
-- Returns how many were acknowledged.
local acked = 0
for i = 3, #ARGV do
  local id = ARGV[i]
  local score = redis.call('ZSCORE', KEYS[2], id)
  if score and tonumber(score) == tonumber(ARGV[1]) then
    redis.call('ZREM', KEYS[2], id)
    if not redis.call('ZSCORE', KEYS[1], id) then redis.call('DEL', ARGV[2] .. id) end
    acked = acked + 1
  end
end
return acked
