-- Forget a dead worker once nothing of it is left: its heartbeat is still old, its outbox stream is empty and
-- it owns no sessions. Atomic, so an outbox entry appended meanwhile is never deleted with the stream.
-- KEYS[1] workers sorted set, KEYS[2] its outbox, KEYS[3] its session set, KEYS[4] its info hash
-- ARGV: worker_id, newest heartbeat (ms) still counted as dead. Returns 1 when deregistered.
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) > tonumber(ARGV[2]) then return 0 end
if redis.call('XLEN', KEYS[2]) > 0 or redis.call('SCARD', KEYS[3]) > 0 then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2], KEYS[4])
return 1
