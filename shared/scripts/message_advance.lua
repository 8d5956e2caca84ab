-- Advance a message's status if the new status ranks higher than the stored one.
-- KEYS[1] message hash ('' to find it through KEYS[2]); KEYS[2] WhatsApp id -> our id ('' if unknown)
-- ARGV: status, rank, wa_message_id, error, now_ms, ttl_seconds, message key prefix, 'status=rank'...
local message_key = KEYS[1]
if message_key == '' then
  if KEYS[2] == '' then return 0 end
  local our_id = redis.call('GET', KEYS[2])
  if not our_id then return 0 end
  message_key = ARGV[7] .. our_id
end
if redis.call('EXISTS', message_key) == 0 then return 0 end
local ranks = {}
for i = 8, #ARGV do
  local name, rank = string.match(ARGV[i], '([^=]+)=(%-?%d+)')
  ranks[name] = tonumber(rank)
end
if ARGV[3] ~= '' and KEYS[2] ~= '' then
  redis.call('HSET', message_key, 'wa_message_id', ARGV[3])
  redis.call('SET', KEYS[2], redis.call('HGET', message_key, 'id'), 'EX', ARGV[6])
end
local current = ranks[redis.call('HGET', message_key, 'status')] or 0
if tonumber(ARGV[2]) <= current then return 0 end
redis.call('HSET', message_key, 'status', ARGV[1], 'updated_at_ms', ARGV[5])
if ARGV[4] ~= '' then redis.call('HSET', message_key, 'error', ARGV[4]) end
return 1
