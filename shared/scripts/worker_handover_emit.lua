-- Write an event a session took from its page earlier but could not write then (Redis was unreachable, or the
-- session stopped driving for safety) to this worker's outbox. A `fact` (a message received, sent from the phone,
-- acked, failed) happened while this worker drove the session and is appended whoever owns it now (ingest drops a
-- repeat by event id); a `state` event (status, QR, pairing code) is appended only while the lease still names
-- this worker with the same fencing token, since a newer owner reports its own state.
-- KEYS[1] lease, KEYS[2] fence counter, KEYS[3] outbox stream; ARGV: worker_id, fence, kind, event json
-- Returns 1 appended, 0 dropped (a stale state event).
if ARGV[3] ~= 'fact' and (redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('GET', KEYS[2]) ~= ARGV[2]) then
  return 0
end
redis.call('XADD', KEYS[3], '*', 'event', ARGV[4])
return 1
