-- Accept an outgoing message in one step: the session must exist in the caller's workspace (not deleted);
-- a message already stored for the client's id comes back as it is; a session in a refused status takes
-- nothing new; then the session's send queue must have room (its worker sends at a paced rate, so a tenant
-- is refused only when the backlog is past the bound: the workspace's `send_queue_max`, else the default);
-- then the message record, its index entry, its place in the queue and the send command on the session's stream.
-- KEYS[1] client id -> message id, KEYS[2] message hash, KEYS[3] session's message index,
-- KEYS[4] session's send queue (sorted set of queued message ids), KEYS[5] session's command stream,
-- KEYS[6] session hash, KEYS[7] workspace record (JSON)
-- ARGV: message_id, ttl_seconds, created_ms, default queue max, command_json, stream_maxlen, workspace_id,
--       refused statuses (space separated), ms per paced send (for Retry-After),
--       then the record's hash as field, value, field, value, ...
-- Returns {'no_session', ''} | {'existing', message_id} | {'refused', status} | {'limited', retry_after_ms}
--       | {'created', message_id}
local session = redis.call('HMGET', KEYS[6], 'workspace_id', 'deleted_at_ms', 'status')
if not session[1] or session[1] ~= ARGV[7] or session[2] then return {'no_session', ''} end
local existing = redis.call('GET', KEYS[1])
if existing then return {'existing', existing} end
for status in string.gmatch(ARGV[8], '%S+') do
  if status == session[3] then return {'refused', status} end
end
local max = tonumber(ARGV[4])
local workspace = redis.call('GET', KEYS[7])
if workspace then
  local ok, settings = pcall(cjson.decode, workspace)
  if ok and type(settings) == 'table' and type(settings['send_queue_max']) == 'number' then
    max = settings['send_queue_max']
  end
end
local depth = redis.call('ZCARD', KEYS[4])
if depth >= max then
  return {'limited', tostring(math.max(1000, (depth - max + 1) * tonumber(ARGV[9])))}
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('HSET', KEYS[2], unpack(ARGV, 10))
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
redis.call('EXPIRE', KEYS[4], ARGV[2])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[6], '*', 'command', ARGV[5])
return {'created', ARGV[1]}
