-- Remove a soft-deleted session for good once cleanup saw its tombstone expire, unless it was restored
-- (or deleted again) meanwhile: the hash, its index entries and its Redis auth archive.
-- KEYS[1] session hash, KEYS[2] sessions index, KEYS[3] workspace sessions, KEYS[4] phone set (or dummy),
-- KEYS[5] unowned set, KEYS[6] auth archive (hash; field s3_key names a large archive in S3), KEYS[7] auth index
-- ARGV: session_id, expected deleted_at_ms.
-- Returns {1, s3_key or ''} when purged (the caller deletes the S3 object), 0 when not.
if redis.call('HGET', KEYS[1], 'deleted_at_ms') ~= ARGV[2] then return 0 end
local s3_key = ''
if redis.call('TYPE', KEYS[6]).ok == 'hash' then s3_key = redis.call('HGET', KEYS[6], 's3_key') or '' end
redis.call('DEL', KEYS[1], KEYS[6])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('SREM', KEYS[4], ARGV[1])
redis.call('SREM', KEYS[5], ARGV[1])
redis.call('SREM', KEYS[7], ARGV[1])
return {1, s3_key}
