-- A dead worker's session whose lease lapsed goes back to the unowned set (the same rule as cleanup's:
-- no lease, owner still the dead worker, not deleted, not in a terminal status).
-- KEYS[1] session hash, KEYS[2] lease, KEYS[3] the dead worker's set, KEYS[4] unowned set
-- ARGV: session_id, dead worker id, terminal statuses (space separated). Returns 1 requeued, 0 not.
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local state = redis.call('HMGET', KEYS[1], 'owner', 'status', 'deleted_at_ms')
if state[1] ~= ARGV[2] then redis.call('SREM', KEYS[3], ARGV[1]) return 0 end
if state[3] then return 0 end
if state[2] and string.find(' ' .. ARGV[3] .. ' ', ' ' .. state[2] .. ' ', 1, true) then return 0 end
redis.call('HDEL', KEYS[1], 'owner')
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[1])
return 1
