-- Restore a soft-deleted session while its tombstone is kept: it becomes `starting` again, live for its
-- phone and waiting for a worker.
-- KEYS[1] session hash, KEYS[2] its phone set (or a dummy key), KEYS[3] unowned set
-- ARGV: session_id, now_ms, retention_ms, status, reason
-- Returns 1 restored, 0 no such session, -1 not deleted, -2 tombstone expired.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local deleted_at = redis.call('HGET', KEYS[1], 'deleted_at_ms')
if not deleted_at then return -1 end
if tonumber(ARGV[2]) - tonumber(deleted_at) > tonumber(ARGV[3]) then return -2 end
redis.call('HDEL', KEYS[1], 'deleted_at_ms', 'owner', 'cleanup_since', 'qr', 'qr_expires_at', 'pairing_code')
redis.call('HSET', KEYS[1], 'status', ARGV[4], 'reason', ARGV[5], 'status_at_ms', ARGV[2], 'updated_at_ms', ARGV[2])
if redis.call('HEXISTS', KEYS[1], 'phone') == 1 then redis.call('SADD', KEYS[2], ARGV[1]) end
redis.call('SADD', KEYS[3], ARGV[1])
return 1
