-- Every state write of a session worker goes through a fence check: the lease must still name this worker
-- and the fencing token must be the one it got when it claimed the session.
-- In one step: optionally SET a marker NX (a send_text done/begun), optionally XADD an event to the worker's
-- outbox, optionally XACK a command. When the marker already exists nothing is appended (already done).
-- KEYS[1] lease, KEYS[2] fence counter, KEYS[3] outbox stream, KEYS[4] marker ('' none), KEYS[5] command stream
-- ARGV: worker_id, fence, event json ('' none), marker value, marker ttl s, group, command entry id ('' none)
-- Returns 1 done, 0 marker existed (nothing appended), -1 fenced off (not the owner any more).
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('GET', KEYS[2]) ~= ARGV[2] then return -1 end
local result = 1
if KEYS[4] ~= '' then
  if not redis.call('SET', KEYS[4], ARGV[4], 'NX', 'EX', ARGV[5]) then result = 0 end
end
if result == 1 and ARGV[3] ~= '' then
  redis.call('XADD', KEYS[3], '*', 'event', ARGV[3])
end
if ARGV[7] ~= '' then redis.call('XACK', KEYS[5], ARGV[6], ARGV[7]) end
return result
