-- Cleanup's status change (qr timeout, soft delete after a long disconnect, retirement of a duplicate),
-- applied only if the session is still exactly as cleanup read it (compare-and-set on status and
-- status_at_ms, not deleted), so a racing worker update is never overwritten. The session.status event
-- is queued in the same step when an outbox is given.
-- KEYS[1] session hash, KEYS[2] its phone set (or a dummy key), KEYS[3] unowned set,
-- KEYS[4] outbox list (or a dummy key), KEYS[5] guard session hash (or a dummy key)
-- ARGV: session_id, expected_status, expected_status_at_ms, new_status, reason, now_ms, soft_delete (0/1),
--       event_json ('' = none), guard_status, guard_status_at_ms ('' = no guard)
-- Returns 1 when applied, 0 when the session changed (or vanished) since it was read.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local state = redis.call('HMGET', KEYS[1], 'status', 'status_at_ms', 'deleted_at_ms')
if state[1] ~= ARGV[2] or (state[2] or '0') ~= ARGV[3] or state[3] then return 0 end
if ARGV[10] ~= '' then
  local guard = redis.call('HMGET', KEYS[5], 'status', 'status_at_ms', 'deleted_at_ms')
  if guard[1] ~= ARGV[9] or guard[2] ~= ARGV[10] or guard[3] then return 0 end
end
redis.call('HSET', KEYS[1], 'status', ARGV[4], 'reason', ARGV[5], 'status_at_ms', ARGV[6], 'updated_at_ms', ARGV[6])
redis.call('HDEL', KEYS[1], 'qr', 'qr_expires_at', 'pairing_code', 'cleanup_since')
if ARGV[7] == '1' then redis.call('HSET', KEYS[1], 'deleted_at_ms', ARGV[6]) end
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
if ARGV[8] ~= '' then redis.call('RPUSH', KEYS[4], ARGV[8]) end
return 1
