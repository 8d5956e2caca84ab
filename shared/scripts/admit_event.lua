-- Decide one event's fate in one step: duplicate, in flight, throttled (token bucket), dropped, or accepted.
-- The bucket holds at most `depth` tokens and refills `per_minute` per minute, so any 60 s window
-- admits at most per_minute + depth events. Server time keeps many producers on one clock.
-- An accepted event's dedupe mark says 'pending' for `pending_ttl_seconds` until ingest confirms it was
-- enqueued ('done', kept for the dedupe window): a copy arriving meanwhile is told to come back later
-- rather than called a duplicate, and a mark whose ingest died before confirming lapses by itself.
-- KEYS[1] dedupe mark, KEYS[2] bucket hash
-- ARGV: per_minute, depth, pending_ttl_seconds, bypass (0/1), droppable (0/1)
-- Returns {outcome, retry_after_ms}: outcome 0 accepted, 1 duplicate, 2 throttled, 3 dropped, 4 in flight
local mark = redis.call('GET', KEYS[1])
if mark == 'pending' then return {4, math.max(redis.call('PTTL', KEYS[1]), 1000)} end
if mark then return {1, 0} end
local per_minute = tonumber(ARGV[1])
local depth = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local rate = per_minute / 60000.0
local state = redis.call('HMGET', KEYS[2], 'tokens', 'ts')
local tokens = tonumber(state[1])
local stamp = tonumber(state[2])
if tokens == nil then
  tokens = depth
  stamp = now
end
tokens = math.min(depth, tokens + math.max(0, now - stamp) * rate)
local ttl_ms = math.ceil(depth / rate) + 1000
if ARGV[4] ~= '1' then
  if tokens < 1 then
    redis.call('HSET', KEYS[2], 'tokens', tostring(tokens), 'ts', now)
    redis.call('PEXPIRE', KEYS[2], ttl_ms)
    if ARGV[5] == '1' then return {3, 0} end
    return {2, math.ceil((1 - tokens) / rate)}
  end
  tokens = tokens - 1
  redis.call('HSET', KEYS[2], 'tokens', tostring(tokens), 'ts', now)
  redis.call('PEXPIRE', KEYS[2], ttl_ms)
end
redis.call('SET', KEYS[1], 'pending', 'EX', ARGV[3])
return {0, 0}
