-- Return a session to the unowned pool when its owner's lease expired and nobody took it over: only if the
-- lease is still absent, the owner is still the one read, and the session is live (not terminal, not deleted).
-- KEYS[1] session hash, KEYS[2] lease key, KEYS[3] the owner's worker set, KEYS[4] unowned set
-- ARGV: session_id, expected owner, terminal statuses (space separated). Returns 1 when released.
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local state = redis.call('HMGET', KEYS[1], 'owner', 'status', 'deleted_at_ms')
if state[1] ~= ARGV[2] or state[3] then return 0 end
if state[2] and string.find(' ' .. ARGV[3] .. ' ', ' ' .. state[2] .. ' ', 1, true) then return 0 end
redis.call('HDEL', KEYS[1], 'owner')
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[1])
return 1
