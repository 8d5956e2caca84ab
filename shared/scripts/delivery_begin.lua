-- Begin one delivery attempt: collapse duplicate or stale queue messages, take a lease, read the endpoint
-- and the endpoint's circuit breaker, in one step.
-- KEYS[1] delivery state hash, KEYS[2] endpoint JSON, KEYS[3] endpoint breaker hash
-- ARGV: attempt, now_ms, lease_ms, token, state_ttl_s, workspace_id, endpoint_id, event_id, cooldown_ms
-- Returns {verdict, endpoint_json, breaker, breaker_wait_ms}
--   verdict: go | delivered (already delivered) | stale (an older or finished attempt) | busy (leased elsewhere)
--   breaker: closed | open (wait breaker_wait_ms) | probe (this attempt is the one probe after the cool-down)
local attempt = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local lease_ms = tonumber(ARGV[3])
local st = redis.call('HMGET', KEYS[1], 'status', 'attempt', 'finished', 'lease_token', 'lease_until')
local status = st[1]
local begun = tonumber(st[2] or '0')
local finished = tonumber(st[3] or '0')
if status == 'delivered' then return {'delivered', '', '', '0'} end
if attempt < begun or attempt <= finished then return {'stale', '', '', '0'} end
if attempt == begun and st[4] and st[4] ~= ARGV[4] and tonumber(st[5] or '0') > now then
  return {'busy', '', '', '0'}
end
redis.call('HSET', KEYS[1], 'attempt', attempt, 'lease_token', ARGV[4], 'lease_until', now + lease_ms,
  'workspace_id', ARGV[6], 'endpoint_id', ARGV[7], 'event_id', ARGV[8])
if not status then redis.call('HSET', KEYS[1], 'status', 'pending') end
redis.call('EXPIRE', KEYS[1], ARGV[5])
local endpoint = redis.call('GET', KEYS[2]) or ''
local b = redis.call('HMGET', KEYS[3], 'open_until', 'probe_token', 'probe_until')
local open_until = tonumber(b[1] or '0')
if open_until == 0 then return {'go', endpoint, 'closed', '0'} end
if now < open_until then return {'go', endpoint, 'open', tostring(open_until - now)} end
local probe_until = tonumber(b[3] or '0')
if b[2] and probe_until > now then
  -- a probe is in flight: look again after at most one more cool-down
  return {'go', endpoint, 'open', tostring(math.min(probe_until - now, tonumber(ARGV[9])))}
end
redis.call('HSET', KEYS[3], 'probe_token', ARGV[4], 'probe_until', now + lease_ms)
return {'go', endpoint, 'probe', '0'}
