-- Clear a session's send queue: every queued message that no worker has started sending is cancelled (its
-- record failed with the reason, its done-marker set so a worker that reaches its command only acknowledges
-- it); one already handed to WhatsApp (its 'sending' marker exists) stays, as does anything that finished
-- meanwhile (only its stale queue entry goes).
-- KEYS[1] the session's send queue
-- ARGV: message key prefix, 'sending' marker prefix, 'sent' marker prefix, marker ttl s, now_ms, error
-- Returns the ids of the cancelled messages.
local cancelled = {}
for _, message_id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local message_key = ARGV[1] .. message_id
  local fields = redis.call('HMGET', message_key, 'status', 'client_message_id')
  if fields[1] ~= 'queued' or not fields[2] then
    redis.call('ZREM', KEYS[1], message_id)
  elseif redis.call('EXISTS', ARGV[2] .. fields[2]) == 0 then
    if redis.call('SET', ARGV[3] .. fields[2], 'cancelled', 'NX', 'EX', ARGV[4]) then
      redis.call('HSET', message_key, 'status', 'failed', 'error', ARGV[6], 'updated_at_ms', ARGV[5])
      cancelled[#cancelled + 1] = message_id
    end
    redis.call('ZREM', KEYS[1], message_id)
  end
end
return cancelled
