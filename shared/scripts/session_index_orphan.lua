-- Drop index entries of a session whose hash no longer exists (checked again here, atomically).
-- KEYS[1] session hash, KEYS[2] sessions index, KEYS[3] unowned set; ARGV[1] session_id. Returns 1 when dropped.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
return 1
