-- Remember when cleanup first saw a session in a timed status (`<status>:<ms>`), because a refreshed QR
-- moves status_at_ms forward; written only if the session still exists and is still in that status.
-- KEYS[1] session hash; ARGV: status, marker ('' = remove the marker). Returns 1 when written.
if redis.call('HGET', KEYS[1], 'status') ~= ARGV[1] then return 0 end
if ARGV[2] == '' then return redis.call('HDEL', KEYS[1], 'cleanup_since') end
redis.call('HSET', KEYS[1], 'cleanup_since', ARGV[2])
return 1
