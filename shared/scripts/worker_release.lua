-- Give a session up: drop the lease and the owner field; with requeue=1 (graceful stop) put it back in the
-- unowned set so another worker takes it at once; with requeue=0 (logged out, failed, stopped) park it.
-- KEYS[1] lease, KEYS[2] fence counter, KEYS[3] session hash, KEYS[4] this worker's set, KEYS[5] unowned set
-- ARGV: worker_id, fence, session_id, requeue (0/1). Returns 1 released, 0 not ours any more.
redis.call('SREM', KEYS[4], ARGV[3])
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
if redis.call('HGET', KEYS[3], 'owner') == ARGV[1] then redis.call('HDEL', KEYS[3], 'owner') end
if ARGV[4] == '1' and redis.call('EXISTS', KEYS[3]) == 1 and redis.call('HEXISTS', KEYS[3], 'deleted_at_ms') == 0 then
  redis.call('SADD', KEYS[5], ARGV[3])
end
return 1
