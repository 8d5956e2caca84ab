-- Create a message record once per (session, client message id).
-- KEYS[1] client id -> message id, KEYS[2] message hash, KEYS[3] session's message index
-- ARGV: message_id, ttl_seconds, created_ms, field, value, ...
local existing = redis.call('GET', KEYS[1])
if existing then return existing end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local fields = {}
for i = 4, #ARGV do table.insert(fields, ARGV[i]) end
redis.call('HSET', KEYS[2], unpack(fields))
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
return ARGV[1]
