-- Cleanup's writes for many sessions in one call, each a compare-and-set: it applies only if the session is
-- still in the state cleanup read, so a racing worker update is never overwritten.
-- KEYS[1] unowned set, KEYS[2] sessions index, KEYS[3] outbox list (or a dummy key), KEYS[4] auth index
-- ARGV[1] now_ms, ARGV[2] terminal statuses (space separated), ARGV[3] session key prefix, ARGV[4] lease key
--   prefix, ARGV[5] auth archive key prefix, ARGV[6..8] phone-set key parts (a..workspace..b..phone..c),
--   ARGV[9..10] workspace-sessions key parts (a..workspace..b), ARGV[11..12] worker-set key parts (a..worker..b),
--   ARGV[13..14] command-stream key parts, ARGV[15..16] message-index key parts, ARGV[17..18] fence key parts
--   (each a..session_id..b)
-- ARGV[19] a JSON array of rows, each an array of 13 strings: op, session_id, workspace_id, phone, expected,
--   expected_status_at_ms, status, reason, soft_delete (0/1), event_json, guard_id, guard_status, guard_status_at_ms
--   op `transition`: status/status_at_ms still `expected`/`expected_status_at_ms` and not deleted (and the guard
--     session, if any, still in guard_status at guard_status_at_ms) -> status, reason, status_at_ms = now; leaves
--     its phone's live set and the unowned pool; soft_delete stamps deleted_at_ms; event_json goes to the outbox.
--   op `purge`: deleted_at_ms still `expected` -> the hash, its index entries, its Redis auth archive, command
--     stream, message index and fence (none of which expire) are deleted.
--   op `release`: lease absent, owner still `expected`, live -> owner removed, back to the unowned pool.
--   op `unphone`: the session is gone, deleted or terminal -> it leaves the (workspace, phone) live set.
--   op `orphan`: the hash is gone -> the index entry is dropped.
-- Returns one reply per row: 1 applied / 0 not; a purge that applied returns {1, s3_key of its archive or ''}.
local now = ARGV[1]
local terminal = ' ' .. ARGV[2] .. ' '
local function phone_key(ws, phone)
  if phone == '' then return nil end
  return ARGV[6] .. ws .. ARGV[7] .. phone .. ARGV[8]
end
local function is_terminal(status) return status and string.find(terminal, ' ' .. status .. ' ', 1, true) end

local out = {}
for _, row in ipairs(cjson.decode(ARGV[19])) do
  local op, id, ws, phone, expected, expected_at, status, reason, soft_delete, event_json, guard_id, guard_status,
    guard_at = unpack(row, 1, 13)
  local key = ARGV[3] .. id
  local result = 0
  if op == 'transition' then
    local state = redis.call('HMGET', key, 'status', 'status_at_ms', 'deleted_at_ms')
    local ok = state[1] == expected and (state[2] or '0') == expected_at and not state[3]
    if ok and guard_id ~= '' then
      local guard = redis.call('HMGET', ARGV[3] .. guard_id, 'status', 'status_at_ms', 'deleted_at_ms')
      ok = guard[1] == guard_status and guard[2] == guard_at and not guard[3]
    end
    if ok then
      -- never move status_at_ms backwards (a worker clock ahead of ours), so older reports cannot undo this
      local at = math.max(tonumber(now), (tonumber(state[2]) or 0) + 1)
      redis.call('HSET', key, 'status', status, 'reason', reason, 'status_at_ms', at, 'updated_at_ms', now)
      redis.call('HDEL', key, 'qr', 'qr_expires_at', 'pairing_code', 'cleanup_since')
      if soft_delete == '1' then redis.call('HSET', key, 'deleted_at_ms', now) end
      local pk = phone_key(ws, phone)
      if pk then redis.call('SREM', pk, id) end
      redis.call('SREM', KEYS[1], id)
      if event_json ~= '' then redis.call('RPUSH', KEYS[3], event_json) end
      result = 1
    end
  elseif op == 'purge' then
    if redis.call('HGET', key, 'deleted_at_ms') == expected then
      local auth = ARGV[5] .. id
      local s3_key = ''
      if redis.call('TYPE', auth).ok == 'hash' then s3_key = redis.call('HGET', auth, 's3_key') or '' end
      redis.call('DEL', key, auth, ARGV[13] .. id .. ARGV[14], ARGV[15] .. id .. ARGV[16], ARGV[17] .. id .. ARGV[18])
      redis.call('ZREM', KEYS[2], id)
      redis.call('ZREM', ARGV[9] .. ws .. ARGV[10], id)
      local pk = phone_key(ws, phone)
      if pk then redis.call('SREM', pk, id) end
      redis.call('SREM', KEYS[1], id)
      redis.call('SREM', KEYS[4], id)
      result = {1, s3_key}
    end
  elseif op == 'release' then
    if redis.call('EXISTS', ARGV[4] .. id) == 0 then
      local state = redis.call('HMGET', key, 'owner', 'status', 'deleted_at_ms')
      if state[1] == expected and not state[3] and state[2] and not is_terminal(state[2]) then
        redis.call('HDEL', key, 'owner')
        redis.call('SREM', ARGV[11] .. expected .. ARGV[12], id)
        redis.call('SADD', KEYS[1], id)
        result = 1
      end
    end
  elseif op == 'unphone' then
    -- a phone set keeps only live sessions: drop a member that is gone, deleted or terminal
    local state = redis.call('HMGET', key, 'status', 'deleted_at_ms')
    local pk = phone_key(ws, phone)
    if pk and (not state[1] or state[2] or is_terminal(state[1])) then
      result = redis.call('SREM', pk, id)
    end
  elseif op == 'orphan' then
    if redis.call('EXISTS', key) == 0 then
      redis.call('ZREM', KEYS[2], id)
      redis.call('SREM', KEYS[1], id)
      result = 1
    end
  else
    return redis.error_reply('unknown cleanup op ' .. tostring(op))
  end
  table.insert(out, result)
end
return out
