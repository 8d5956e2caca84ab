-- The next page of the session index after a cursor, in index order (score, then member).
-- KEYS[1] sessions index (sorted set, score = created ms)
-- ARGV: cursor_score ('' = from the start), cursor_member, count
-- Returns a flat {member, score, member, score, ...} list (empty at the end of the index).
local n = tonumber(ARGV[3])
if ARGV[1] == '' then
  return redis.call('ZRANGE', KEYS[1], 0, n - 1, 'WITHSCORES')
end
local rank = redis.call('ZRANK', KEYS[1], ARGV[2])
if rank then
  return redis.call('ZRANGE', KEYS[1], rank + 1, rank + n, 'WITHSCORES')
end
-- The cursor's member left the index: resume at its score and skip same-score members sorting before it.
local cursor_score = tonumber(ARGV[1])
local start = redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. ARGV[1])
local out = {}
while #out < 2 * n do
  local chunk = redis.call('ZRANGE', KEYS[1], start, start + n - 1, 'WITHSCORES')
  if #chunk == 0 then break end
  for i = 1, #chunk, 2 do
    local member, score = chunk[i], chunk[i + 1]
    if (tonumber(score) > cursor_score or member > ARGV[2]) and #out < 2 * n then
      table.insert(out, member)
      table.insert(out, score)
    end
  end
  start = start + n
end
return out
