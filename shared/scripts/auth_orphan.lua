-- Delete a session's Redis auth archive and its auth-index entry when the session no longer exists.
-- KEYS[1] session hash, KEYS[2] auth archive, KEYS[3] auth index; ARGV[1] session_id.
-- Returns 1 when the session is gone (archive deleted), 0 when it exists.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], ARGV[1])
return 1
