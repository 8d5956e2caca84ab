-- A session worker takes a session: only when nobody holds its lease and it still exists (not deleted or
-- retired). Sets the lease (PX ttl), bumps the fencing token and names the owner, in one step.
-- KEYS[1] unowned set, KEYS[2] lease, KEYS[3] fence counter, KEYS[4] session hash, KEYS[5] this worker's set
-- ARGV: session_id, worker_id, ttl_ms, worker-set key prefix, worker-set key suffix
-- Returns the new fencing token, or 0 (not claimable; dropped from the unowned set).
if redis.call('EXISTS', KEYS[4]) == 0 or redis.call('HEXISTS', KEYS[4], 'deleted_at_ms') == 1
  or redis.call('HGET', KEYS[4], 'status') == 'retired' then
  redis.call('SREM', KEYS[1], ARGV[1])
  return 0
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('SREM', KEYS[1], ARGV[1])
  return 0
end
local previous = redis.call('HGET', KEYS[4], 'owner')
if previous and previous ~= ARGV[2] then
  redis.call('SREM', ARGV[4] .. previous .. ARGV[5], ARGV[1])
end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
local fence = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[4], 'owner', ARGV[2], 'fence', fence)
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[5], ARGV[1])
return fence
