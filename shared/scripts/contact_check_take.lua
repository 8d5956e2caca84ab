-- Take one token from a session's bucket of number checks (refilled continuously, `per_minute` a minute, holding
-- at most `burst`, on the server's clock). Nothing changes when it is empty.
-- KEYS[1] the session's bucket (hash: tokens, at_ms)
-- ARGV: per_minute, burst
-- Returns 0 when a token was taken, else the milliseconds until one will be there.
local per_ms = tonumber(ARGV[1]) / 60000
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'at_ms')
local tokens = tonumber(bucket[1]) or burst
local at = tonumber(bucket[2]) or now
if now > at then tokens = math.min(burst, tokens + (now - at) * per_ms) end
if tokens < 1 then
  return math.ceil((1 - tokens) / per_ms)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'at_ms', tostring(math.max(now, at)))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / per_ms) + 1000)
return 0
