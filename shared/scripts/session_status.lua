-- Apply a session.status change if it is not older than the one stored; when the new status is
-- `ready`, retire every other live session of the same phone in the workspace, in the same step.
-- KEYS[1] session hash, KEYS[2] the workspace's phone set (may be a dummy key when no phone)
-- ARGV: status, reason, occurred_ms, now_ms, phone, retire_status, retire_reason, session_prefix
-- Returns {applied (0/1), retired session id...}
local current_at = tonumber(redis.call('HGET', KEYS[1], 'status_at_ms') or '0')
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
local occurred = tonumber(ARGV[3])
if occurred < current_at then return {0} end
local fields = {'status', ARGV[1], 'status_at_ms', ARGV[3], 'updated_at_ms', ARGV[4]}
redis.call('HSET', KEYS[1], unpack(fields))
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'reason', ARGV[2]) else redis.call('HDEL', KEYS[1], 'reason') end
if ARGV[1] ~= 'qr' then redis.call('HDEL', KEYS[1], 'qr', 'qr_expires_at') end
if ARGV[1] ~= 'pairing' then redis.call('HDEL', KEYS[1], 'pairing_code') end
local result = {1}
if ARGV[5] ~= '' then
  local self_id = redis.call('HGET', KEYS[1], 'id')
  if redis.call('HGET', KEYS[1], 'phone') ~= ARGV[5] then redis.call('HSET', KEYS[1], 'phone', ARGV[5]) end
  redis.call('SADD', KEYS[2], self_id)
  if ARGV[1] == 'ready' then
    for _, other in ipairs(redis.call('SMEMBERS', KEYS[2])) do
      if other ~= self_id then
        local other_key = ARGV[8] .. other
        local status = redis.call('HGET', other_key, 'status')
        if status and status ~= 'retired' and redis.call('HEXISTS', other_key, 'deleted_at_ms') == 0 then
          redis.call('HSET', other_key, 'status', ARGV[6], 'reason', ARGV[7], 'status_at_ms', ARGV[4],
            'updated_at_ms', ARGV[4])
          redis.call('HDEL', other_key, 'qr', 'qr_expires_at', 'pairing_code')
          redis.call('SREM', KEYS[2], other)
          table.insert(result, other)
        end
      end
    end
  end
end
return result
