-- Remove a session's auth archive (fenced): logout, deletion. KEYS[1] lease, KEYS[2] fence, KEYS[3] auth hash,
-- KEYS[4] auth index; ARGV: worker_id, fence, session_id. Returns {1, s3_key or ''} or {-1, ''} when fenced off.
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('GET', KEYS[2]) ~= ARGV[2] then return {-1, ''} end
local previous = redis.call('HGET', KEYS[3], 's3_key') or ''
redis.call('DEL', KEYS[3])
redis.call('SREM', KEYS[4], ARGV[3])
return {1, previous}
