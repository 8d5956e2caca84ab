-- Renew a lease only while this worker holds it with this fencing token (never re-creates a lapsed lease).
-- KEYS[1] lease, KEYS[2] fence counter; ARGV: worker_id, fence, ttl_ms. Returns 1 renewed, 0 lost.
if redis.call('GET', KEYS[1]) == ARGV[1] and redis.call('GET', KEYS[2]) == ARGV[2] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
return 0
