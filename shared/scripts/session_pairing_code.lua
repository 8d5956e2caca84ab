-- Store the newest pairing code and move the session to status `pairing`, unless a newer status is stored.
-- KEYS[1] session hash; ARGV: code, occurred_ms, now_ms, pairing_status
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local current_at = tonumber(redis.call('HGET', KEYS[1], 'status_at_ms') or '0')
if tonumber(ARGV[2]) < current_at then return 0 end
redis.call('HSET', KEYS[1], 'pairing_code', ARGV[1], 'status', ARGV[4], 'status_at_ms', ARGV[2],
  'updated_at_ms', ARGV[3])
redis.call('HDEL', KEYS[1], 'reason')
return 1
