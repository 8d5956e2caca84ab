-- Finish one delivery attempt: log it, advance the delivery state (if this attempt still holds the lease),
-- and feed the endpoint's circuit breaker, in one step.
-- KEYS[1] delivery state hash, KEYS[2] attempt log list, KEYS[3] event's delivery set, KEYS[4] breaker hash
-- ARGV: token, attempt, outcome (delivered|pending|dead|deferred), attempt_json ('' = nothing to log),
--       state_ttl_s, log_ttl_s, log_max, breaker_result (success|failure|none), now_ms, threshold,
--       cooldown_ms, delivery_id, breaker_ttl_s
-- Returns 1 when the state was ours to advance, 0 when another holder took the lease over.
local now = tonumber(ARGV[9])
if ARGV[4] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[4])
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[7]), -1)
  redis.call('EXPIRE', KEYS[2], ARGV[6])
  redis.call('SADD', KEYS[3], ARGV[12])
  redis.call('EXPIRE', KEYS[3], ARGV[6])
end
local mine = redis.call('HGET', KEYS[1], 'lease_token') == ARGV[1]
if mine then
  if ARGV[3] ~= 'deferred' then
    local finished = tonumber(redis.call('HGET', KEYS[1], 'finished') or '0')
    if tonumber(ARGV[2]) > finished then redis.call('HSET', KEYS[1], 'finished', ARGV[2]) end
    redis.call('HSET', KEYS[1], 'status', ARGV[3])
  end
  redis.call('HDEL', KEYS[1], 'lease_token', 'lease_until')
  redis.call('EXPIRE', KEYS[1], ARGV[5])
end
local was_probe = redis.call('HGET', KEYS[4], 'probe_token') == ARGV[1]
if ARGV[8] == 'success' then
  redis.call('DEL', KEYS[4])
elseif ARGV[8] == 'failure' then
  local failures = redis.call('HINCRBY', KEYS[4], 'failures', 1)
  local open_until = tonumber(redis.call('HGET', KEYS[4], 'open_until') or '0')
  if was_probe or (failures >= tonumber(ARGV[10]) and open_until <= now) then
    redis.call('HSET', KEYS[4], 'open_until', now + tonumber(ARGV[11]))
    redis.call('HDEL', KEYS[4], 'probe_token', 'probe_until')
  end
  redis.call('EXPIRE', KEYS[4], ARGV[13])
elseif was_probe then
  redis.call('HDEL', KEYS[4], 'probe_token', 'probe_until')
end
if mine then return 1 end
return 0
