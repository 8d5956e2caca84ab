-- Accept an outgoing message in one step: the session must exist in the caller's workspace (not deleted);
-- a message already stored for the client's id comes back as it is; a session in a refused status takes
-- nothing new; then the session's send limit (a token bucket refilled continuously, `limit` tokens a
-- minute, on the server's clock); then the message record, its index entry and the send command on the
-- session's stream.
-- KEYS[1] client id -> message id, KEYS[2] message hash, KEYS[3] session's message index,
-- KEYS[4] session's send-rate bucket (hash), KEYS[5] session's command stream, KEYS[6] session hash
-- ARGV: message_id, ttl_seconds, created_ms, limit_per_minute, command_json, stream_maxlen, workspace_id,
--       refused statuses (space separated), then the record's hash as field, value, field, value, ...
-- Returns {'no_session', ''} | {'existing', message_id} | {'refused', status} | {'limited', retry_after_ms}
--       | {'created', message_id}
local session = redis.call('HMGET', KEYS[6], 'workspace_id', 'deleted_at_ms', 'status')
if not session[1] or session[1] ~= ARGV[7] or session[2] then return {'no_session', ''} end
local existing = redis.call('GET', KEYS[1])
if existing then return {'existing', existing} end
for status in string.gmatch(ARGV[8], '%S+') do
  if status == session[3] then return {'refused', status} end
end
local limit = tonumber(ARGV[4])
local per_ms = limit / 60000
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local bucket = redis.call('HMGET', KEYS[4], 'tokens', 'at_ms')
local tokens = tonumber(bucket[1]) or limit
local at = tonumber(bucket[2]) or now
if now > at then tokens = math.min(limit, tokens + (now - at) * per_ms) end
if tokens < 1 then
  return {'limited', tostring(math.ceil((1 - tokens) / per_ms))}
end
redis.call('HSET', KEYS[4], 'tokens', tostring(tokens - 1), 'at_ms', tostring(math.max(now, at)))
redis.call('PEXPIRE', KEYS[4], 120000)
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('HSET', KEYS[2], unpack(ARGV, 9))
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[6], '*', 'command', ARGV[5])
return {'created', ARGV[1]}
