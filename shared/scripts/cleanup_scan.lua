-- One page of cleanup's walk over the session index, read and pre-filtered inside Redis: returns only the
-- sessions that may need something (a conservative superset of what functions/cleanup/rules.py acts on),
-- so a pass over 100,000 sessions does not ship 100,000 hashes to the client.
-- KEYS[1] sessions index (sorted set, score = created ms)
-- ARGV: cursor_score ('' = from the start), cursor_member, count, now_ms, qr_timeout_ms,
--       disconnected_after_ms, tombstone_retention_ms, terminal statuses (space separated),
--       session key prefix, lease key prefix, phone-set key parts a, b, c (key = a..workspace..b..phone..c),
--       write_markers (1: keep the `cleanup_since` marker, `<status>:<first seen ms>`, of timed statuses; 0: dry)
-- A refreshed QR moves status_at_ms forward, so the marker remembers when cleanup first saw the current
-- timed status (qr, pairing, disconnected), and the wait is counted from the earlier of the two.
-- Returns {scanned, last_member, last_score, row, row, ...}; row = {id, workspace_id, phone, status,
--   status_at_ms, owner, deleted_at_ms, created_at_ms, cleanup_since, lease_exists (0/1), phone_set_size}
local n = tonumber(ARGV[3])
local page
if ARGV[1] == '' then
  page = redis.call('ZRANGE', KEYS[1], 0, n - 1, 'WITHSCORES')
else
  local rank = redis.call('ZRANK', KEYS[1], ARGV[2])
  if rank then
    page = redis.call('ZRANGE', KEYS[1], rank + 1, rank + n, 'WITHSCORES')
  else
    -- The cursor's member left the index: resume at its score, skipping same-score members sorting before it.
    local cursor_score = tonumber(ARGV[1])
    local start = redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. ARGV[1])
    page = {}
    while #page < 2 * n do
      local chunk = redis.call('ZRANGE', KEYS[1], start, start + n - 1, 'WITHSCORES')
      if #chunk == 0 then break end
      for i = 1, #chunk, 2 do
        if (tonumber(chunk[i + 1]) > cursor_score or chunk[i] > ARGV[2]) and #page < 2 * n then
          table.insert(page, chunk[i])
          table.insert(page, chunk[i + 1])
        end
      end
      start = start + n
    end
  end
end

local now = tonumber(ARGV[4])
local qr_timeout, disconnected_after, retention = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local terminal = {}
for status in string.gmatch(ARGV[8], '%S+') do terminal[status] = true end
local timeouts = {qr = qr_timeout, pairing = qr_timeout, disconnected = disconnected_after}
local out = {#page / 2, page[#page - 1] or '', page[#page] or ''}
for i = 1, #page, 2 do
  local id = page[i]
  local f = redis.call('HMGET', ARGV[9] .. id, 'workspace_id', 'phone', 'status', 'status_at_ms', 'owner',
    'deleted_at_ms', 'created_at_ms', 'cleanup_since')
  local ws, phone, status, status_at, owner, deleted_at, since = f[1], f[2], f[3], f[4], f[5], f[6], f[8]
  local wanted = false
  local lease, set_size = 0, 0
  if not ws and not status then
    wanted = true
  elseif deleted_at then
    wanted = now - (tonumber(deleted_at) or 0) > retention
  else
    local timeout = status and timeouts[status]
    if timeout then
      local first = tonumber(status_at) or 0
      local marker_status, marker_ms = string.match(since or '', '^(.*):(%d+)$')
      if marker_status ~= status then
        if ARGV[14] == '1' then
          since = status .. ':' .. first
          redis.call('HSET', ARGV[9] .. id, 'cleanup_since', since)
        end
      elseif tonumber(marker_ms) < first then
        first = tonumber(marker_ms)
      end
      if now - first > timeout then wanted = true end
    elseif since and ARGV[14] == '1' then
      redis.call('HDEL', ARGV[9] .. id, 'cleanup_since')  -- left the timed status: the marker is stale
      since = nil
    end
    if status and not terminal[status] then
      if owner then
        lease = redis.call('EXISTS', ARGV[10] .. id)
        if lease == 0 then wanted = true end
      end
      -- duplicates only matter next to a ready session: its phone set is read and the others retired
      if status == 'ready' and phone and ws then
        set_size = redis.call('SCARD', ARGV[11] .. ws .. ARGV[12] .. phone .. ARGV[13])
        if set_size > 1 then wanted = true end
      end
    end
  end
  if wanted then
    table.insert(out, {id, ws or false, phone or false, status or false, status_at or false, owner or false,
      deleted_at or false, f[7] or false, since or false, lease, set_size})
  end
end
return out
