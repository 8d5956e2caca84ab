-- Ingest enqueued these events' deliveries: their dedupe marks go from 'pending' to 'done' for the dedupe window.
-- KEYS: the events' dedupe marks; ARGV[1]: the dedupe window in seconds. Returns how many were set.
for _, key in ipairs(KEYS) do
  redis.call('SET', key, 'done', 'EX', ARGV[1])
end
return #KEYS
