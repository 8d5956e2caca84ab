-- Remove a soft-deleted session for good once cleanup saw its tombstone expire, unless it was restored
-- (or deleted again) meanwhile: the hash, its index entries and its Redis auth archive.
-- KEYS[1] session hash, KEYS[2] sessions index, KEYS[3] workspace sessions, KEYS[4] phone set (or dummy),
-- KEYS[5] unowned set, KEYS[6] auth archive, KEYS[7] auth index
-- ARGV: session_id, expected deleted_at_ms. Returns 1 when purged.
if redis.call('HGET', KEYS[1], 'deleted_at_ms') ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1], KEYS[6])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('SREM', KEYS[4], ARGV[1])
redis.call('SREM', KEYS[5], ARGV[1])
redis.call('SREM', KEYS[7], ARGV[1])
return 1
