-- Store the newest QR and move the session to status `qr`, unless a newer status is stored.
-- KEYS[1] session hash; ARGV: qr, expires_at, occurred_ms, now_ms, qr_status
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local current_at = tonumber(redis.call('HGET', KEYS[1], 'status_at_ms') or '0')
if tonumber(ARGV[3]) < current_at then return 0 end
redis.call('HSET', KEYS[1], 'qr', ARGV[1], 'qr_expires_at', ARGV[2], 'status', ARGV[5],
  'status_at_ms', ARGV[3], 'updated_at_ms', ARGV[4])
redis.call('HDEL', KEYS[1], 'reason')
return 1
