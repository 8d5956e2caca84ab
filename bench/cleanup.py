"""Cleanup benchmark: 100,000 sessions in mixed states in a real redis-server; one full pass, timed.

Prints sessions scanned per second for a dry run, the applying run (which changes ~16 % of the sessions
and queues their events) and a steady-state run (nothing left to change). The target is >= 10,000/s.

Run: .venv/bin/python bench/cleanup.py [--sessions 100000] [--redis-url redis://...]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from collections.abc import Sequence

from redis.asyncio import Redis

from functions.cleanup.logic import RunOptions, run_cleanup
from functions.cleanup.models import CleanupResult
from shared import redis_keys as keys
from shared.events import Event, SessionStatus
from shared.settings import get_settings
from shared.store.records import now_ms
from wagw_local import services

TARGET_PER_SECOND = 10_000
MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR

# (share, status, age of the status in ms, extra) - the mix a busy deployment could hold
MIX: list[tuple[float, SessionStatus, int, str]] = [
    (0.50, SessionStatus.READY, 3 * HOUR, "leased"),
    (0.05, SessionStatus.READY, 3 * HOUR, "lapsed"),  # owner's lease expired
    (0.08, SessionStatus.QR, 5 * MINUTE, ""),
    (0.05, SessionStatus.QR, 4 * DAY, ""),  # stuck waiting for a scan
    (0.05, SessionStatus.DISCONNECTED, 2 * HOUR, ""),
    (0.05, SessionStatus.DISCONNECTED, 2 * DAY, ""),  # long disconnected
    (0.06, SessionStatus.FAILED, 3 * DAY, ""),
    (0.03, SessionStatus.STOPPED, 3 * DAY, "tombstone"),
    (0.03, SessionStatus.STOPPED, 9 * DAY, "tombstone"),  # tombstone past retention
    (0.05, SessionStatus.DISCONNECTED, HOUR, "duplicate"),  # shares its phone with a ready session
    (0.05, SessionStatus.STARTING, MINUTE, ""),
]


# Writes sessions server-side from compact rows, so populating 100,000 takes seconds, not a minute.
POPULATE_LUA = """
local prefix, index, now = ARGV[1], KEYS[1], tonumber(ARGV[2])
local i = 3
while i <= #ARGV do
  local sid, ws, phone, status, at, created, owner, extra = unpack(ARGV, i, i + 7)
  i = i + 8
  local key = prefix .. 'session:' .. sid
  redis.call('HSET', key, 'id', sid, 'workspace_id', ws, 'name', '', 'phone', phone, 'status', status,
    'status_at_ms', at, 'created_at_ms', created, 'updated_at_ms', at)
  redis.call('ZADD', index, created, sid)
  redis.call('ZADD', prefix .. 'ws:' .. ws .. ':sessions', created, sid)
  if extra == 'tombstone' then
    redis.call('HSET', key, 'deleted_at_ms', at)
  elseif status ~= 'failed' then
    redis.call('SADD', prefix .. 'ws:' .. ws .. ':phone:' .. phone, sid)
  end
  if owner ~= '' then
    redis.call('HSET', key, 'owner', owner)
    redis.call('SADD', prefix .. 'worker:' .. owner .. ':sessions', sid)
    if extra == 'leased' then redis.call('SET', prefix .. 'lease:' .. sid, owner, 'PX', 600000) end
  elseif extra ~= 'tombstone' then
    redis.call('SADD', KEYS[2], sid)
  end
end
return 1
"""


async def populate(redis: Redis, count: int, now: int) -> None:
    # The script builds key names itself; check they still match shared.redis_keys.
    prefix = f"{keys.PREFIX}:"
    assert keys.session("x") == f"{prefix}session:x" and keys.session_lease("x") == f"{prefix}lease:x"
    assert keys.workspace_phone_sessions("w", "p") == f"{prefix}ws:w:phone:p"
    assert keys.workspace_sessions("w") == f"{prefix}ws:w:sessions"
    assert keys.worker_sessions("o") == f"{prefix}worker:o:sessions"
    write = redis.register_script(POPULATE_LUA)
    rng = random.Random(7)
    weights = [share for share, *_ in MIX]
    ready_phones: list[tuple[str, str]] = []
    rows: list[str] = []
    for i in range(count):
        _, status, age, extra = rng.choices(MIX, weights)[0]
        sid = f"ses_{i:07d}"
        workspace = f"ws_{i % 500}"
        phone = f"628{i:09d}"
        if extra == "duplicate" and ready_phones:
            workspace, phone = rng.choice(ready_phones)
        owner = "w-1" if extra in ("leased", "lapsed") else ""
        created = now - age - rng.randrange(DAY)
        rows += [sid, workspace, phone, status.value, str(now - age), str(created), owner, extra]
        if status is SessionStatus.READY and extra == "leased":
            ready_phones.append((workspace, phone))
        if len(rows) >= 8 * 2000 or i == count - 1:
            await write(keys=[keys.sessions_index(), keys.unowned_sessions()], args=[prefix, now, *rows])
            rows = []


async def redis_cpu(redis: Redis) -> float:
    """CPU seconds redis-server has used so far (user + system, main thread and children)."""
    info = await redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--redis-url", default=None, help="use this Redis (it is FLUSHED) instead of starting one")
    args = parser.parse_args()

    server = None if args.redis_url else services.start_redis()
    url = args.redis_url or (server.url if server else "")
    os.environ.update(
        {
            "WAGW_REDIS_URL": url,
            "WAGW_CLEANUP_S3_ENABLED": "false",
            "WAGW_CLEANUP_MAX_SESSIONS_PER_RUN": str(max(args.sessions, 1)),
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
    )
    get_settings.cache_clear()
    settings = get_settings()
    posted = 0

    async def sink(events: Sequence[Event]) -> None:
        nonlocal posted
        posted += len(events)

    redis = Redis.from_url(url, decode_responses=True)
    try:
        await redis.flushdb()
        now = now_ms()
        started = time.perf_counter()
        await populate(redis, args.sessions, now)
        print(f"populated {args.sessions:,} sessions in {time.perf_counter() - started:.1f} s (redis {url})")
        runs: list[tuple[str, CleanupResult, float]] = []
        for label, dry in (("dry run", True), ("applying run", False), ("steady-state run", False)):
            cpu_before = time.process_time() + await redis_cpu(redis)
            result = await run_cleanup(redis, settings, RunOptions(dry_run=dry), post=sink, now=now)
            runs.append((label, result, time.process_time() + await redis_cpu(redis) - cpu_before))
        print(
            f"{'run':<18}{'scanned':>10}{'scan s':>9}{'sessions/s':>12}{'whole run s':>13}"
            f"{'CPU s':>8}{'per CPU s':>11}  changes"
        )
        for label, result, cpu in runs:
            changes = ", ".join(f"{k}={v}" for k, v in result.counts.items() if v)
            print(
                f"{label:<18}{result.scanned:>10,}{result.scan_ms / 1000:>9.2f}{result.sessions_per_second:>12,.0f}"
                f"{result.duration_ms / 1000:>13.2f}{cpu:>8.2f}{result.scanned / cpu:>11,.0f}  {changes or '-'}"
            )
        print(f"events posted by the applying run: {posted:,}")
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"machine load average (1, 5, 15 min): {load} on {os.cpu_count()} cores")
        print("(CPU s = this process + redis-server; sessions per CPU second is what an idle machine would do)")
        slowest = min(result.sessions_per_second for _, result, _ in runs)
        slowest_cpu = min(result.scanned / cpu for _, result, cpu in runs)
        complete = all(result.pass_complete and result.scanned >= args.sessions * 0.9 for _, result, _ in runs)
        verdict = "OK" if slowest >= TARGET_PER_SECOND and complete else "BELOW TARGET"
        print(
            f"slowest full pass: {slowest:,.0f} sessions/s wall, {slowest_cpu:,.0f} per CPU second "
            f"(target >= {TARGET_PER_SECOND:,}/s wall): {verdict}"
        )
        return 0 if verdict == "OK" else 1
    finally:
        await redis.flushdb()
        await redis.aclose()
        if server:
            server.stop()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
