-- Create a session for a phone in one step: refuse if the phone already has a live session in the
-- workspace, otherwise retire its stale sessions (status `retired`, out of the phone set and the
-- unowned pool) and create the new one (hash, workspace and global indexes, unowned pool, phone set).
-- KEYS[1] new session hash, KEYS[2] workspace sessions zset, KEYS[3] sessions index zset,
-- KEYS[4] unowned set, KEYS[5] the workspace's phone set
-- ARGV: session_id, created_ms, now_ms, retire_status, retire_reason, session key prefix,
--       live statuses (space separated), field, value, ...
-- Returns {'conflict', live_session_id} or {'created', retired session id...}
local live = {}
for status in string.gmatch(ARGV[7], '%S+') do live[status] = true end
local stale = {}
for _, other in ipairs(redis.call('SMEMBERS', KEYS[5])) do
  local state = redis.call('HMGET', ARGV[6] .. other, 'status', 'deleted_at_ms')
  if not state[1] or state[2] then
    redis.call('SREM', KEYS[5], other)
  elseif live[state[1]] then
    return {'conflict', other}
  elseif state[1] ~= ARGV[4] then
    table.insert(stale, other)
  end
end
local result = {'created'}
for _, other in ipairs(stale) do
  local other_key = ARGV[6] .. other
  redis.call('HSET', other_key, 'status', ARGV[4], 'reason', ARGV[5], 'status_at_ms', ARGV[3], 'updated_at_ms', ARGV[3])
  redis.call('HDEL', other_key, 'qr', 'qr_expires_at', 'pairing_code')
  redis.call('SREM', KEYS[5], other)
  redis.call('SREM', KEYS[4], other)
  table.insert(result, other)
end
local fields = {}
for i = 8, #ARGV do table.insert(fields, ARGV[i]) end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[1])
redis.call('SADD', KEYS[5], ARGV[1])
return result
