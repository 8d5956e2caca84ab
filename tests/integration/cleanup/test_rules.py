"""Each cleanup rule against a real Redis: what changes, what is left alone, and the events sent."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from redis.asyncio import Redis

from functions.cleanup.logic import RunOptions, run_cleanup
from shared import redis_keys as keys
from shared.events import Event, SessionStatus
from shared.producer import EventResult, IngestResponse, Outcome
from shared.settings import get_settings
from shared.store import sessions
from shared.store.records import now_ms
from tests.integration.cleanup.helpers import DAY, HOUR, MINUTE, Ingest, make_session


async def test_qr_and_pairing_waits_time_out_after_the_setting(redis: Redis) -> None:
    # Given sessions waiting for a scan for 29 and 31 minutes, and pairing for 31
    now = now_ms()
    await make_session(redis, "qr-29", SessionStatus.QR, at=now - 29 * MINUTE)
    await make_session(redis, "qr-31", SessionStatus.QR, at=now - 31 * MINUTE)
    await make_session(redis, "pairing-31", SessionStatus.PAIRING, at=now - 31 * MINUTE)
    ingest = Ingest()

    # When cleanup runs at the default 30 minutes
    result = await run_cleanup(redis, get_settings(), post=ingest.post, now=now)

    # Then the two past 30 minutes are failed with reason qr_timeout, and the other still waits
    for sid in ("qr-31", "pairing-31"):
        stopped = await sessions.get_session(redis, sid)
        assert stopped is not None and (stopped.status, stopped.reason) == (SessionStatus.FAILED, "qr_timeout")
    waiting = await sessions.get_session(redis, "qr-29")
    assert waiting is not None and waiting.status is SessionStatus.QR
    assert set(ingest.statuses) == {"qr-31", "pairing-31"}
    assert result.counts["qr_timed_out"] == 2


async def test_thresholds_are_settings(redis: Redis, env: pytest.MonkeyPatch) -> None:
    # Given a 2-minute QR wait and a 10-minute disconnect, with thresholds set to 1 and 5 minutes
    env.setenv("WAGW_QR_TIMEOUT_SECONDS", "60")
    env.setenv("WAGW_DISCONNECTED_DELETE_AFTER_SECONDS", "300")
    get_settings.cache_clear()
    now = now_ms()
    await make_session(redis, "qr", SessionStatus.QR, at=now - 2 * MINUTE)
    await make_session(redis, "gone", SessionStatus.DISCONNECTED, at=now - 10 * MINUTE)

    # When cleanup runs
    result = await run_cleanup(redis, get_settings(), post=Ingest().post, now=now)

    # Then both rules applied
    assert result.counts["qr_timed_out"] == 1 and result.counts["disconnected_deleted"] == 1


async def test_a_refreshed_qr_does_not_reset_the_wait(redis: Redis) -> None:
    # Given a session showing QR codes since 10 minutes, seen by a cleanup run
    start = now_ms()
    await make_session(redis, "s", SessionStatus.QR, at=start - 10 * MINUTE)
    await run_cleanup(redis, get_settings(), post=Ingest().post, now=start)
    # When the worker keeps refreshing the QR (status_at_ms moves forward) and cleanup runs 25 minutes later
    await sessions.set_qr(redis, "s", "2@new", "2026-01-01T00:00:00Z", occurred_at_ms=start + 24 * MINUTE)
    result = await run_cleanup(redis, get_settings(), post=Ingest().post, now=start + 25 * MINUTE)

    # Then the wait counts from when it began (35 minutes), not from the last QR
    stopped = await sessions.get_session(redis, "s")
    assert stopped is not None and stopped.status is SessionStatus.FAILED
    assert result.counts["qr_timed_out"] == 1


async def test_long_disconnected_sessions_are_soft_deleted_and_restorable(redis: Redis) -> None:
    # Given a session disconnected for 25 hours (owned by a worker) and one for 23 hours
    now = now_ms()
    await make_session(redis, "old", SessionStatus.DISCONNECTED, at=now - 25 * HOUR, phone="628111", owner="w1")
    await make_session(redis, "recent", SessionStatus.DISCONNECTED, at=now - 23 * HOUR, phone="628222")
    ingest = Ingest()

    # When cleanup runs
    await run_cleanup(redis, get_settings(), post=ingest.post, now=now)

    # Then the old one is a tombstone (stopped, deleted_at_ms), no longer live for its phone, told to stop
    old = await sessions.get_session(redis, "old")
    assert old is not None and old.status is SessionStatus.STOPPED and old.deleted_at_ms == now
    assert not await redis.sismember(keys.workspace_phone_sessions("1", "628111"), "old")
    assert await redis.zscore(keys.sessions_index(), "old") is not None
    commands = await redis.xrange(keys.session_commands("old"))
    assert len(commands) == 1 and '"stop"' in commands[0][1]["command"]
    assert ingest.statuses == {"old": ("1", "stopped", "deleted_after_disconnect")}
    recent = await sessions.get_session(redis, "recent")
    assert recent is not None and recent.status is SessionStatus.DISCONNECTED and recent.deleted_at_ms is None

    # And restoring it through the store brings it back, waiting for a worker
    outcome = await sessions.restore_session(redis, "old", retention_seconds=7 * 24 * 3600, now=now + HOUR)
    restored = await sessions.get_session(redis, "old")
    assert outcome is sessions.RestoreOutcome.RESTORED
    assert restored is not None and restored.status is SessionStatus.STARTING and restored.deleted_at_ms is None
    assert await redis.sismember(keys.unowned_sessions(), "old")
    assert await redis.sismember(keys.workspace_phone_sessions("1", "628111"), "old")


async def test_restore_is_refused_for_live_missing_and_expired_sessions(redis: Redis) -> None:
    now = now_ms()
    await make_session(redis, "live", SessionStatus.READY, at=now)
    await make_session(redis, "expired", SessionStatus.STOPPED, at=now - 8 * DAY, deleted_at=now - 8 * DAY)
    week = 7 * 24 * 3600
    assert await sessions.restore_session(redis, "live", retention_seconds=week) is sessions.RestoreOutcome.NOT_DELETED
    assert await sessions.restore_session(redis, "nope", retention_seconds=week) is sessions.RestoreOutcome.NOT_FOUND
    assert await sessions.restore_session(redis, "expired", retention_seconds=week) is sessions.RestoreOutcome.EXPIRED


async def test_expired_tombstones_are_purged_with_their_auth_archive(redis: Redis) -> None:
    # Given a tombstone older than 7 days with a Redis auth archive, and one 6 days old
    now = now_ms()
    await make_session(redis, "old", SessionStatus.STOPPED, at=now - 8 * DAY, deleted_at=now - 8 * DAY, phone="6281")
    await make_session(redis, "young", SessionStatus.STOPPED, at=now - 6 * DAY, deleted_at=now - 6 * DAY)
    await redis.hset(keys.session_auth("old"), mapping={"kind": "profile", "data": "x"})
    await redis.sadd(keys.auth_index(), "old")
    await redis.xadd(keys.session_commands("old"), {"command": "{}"})
    await redis.zadd(keys.session_messages("old"), {"msg_1": 1})
    await redis.set(keys.session_fence("old"), 3)

    # When cleanup runs
    result = await run_cleanup(redis, get_settings(), RunOptions(s3_enabled=False), post=Ingest().post, now=now)

    # Then the old one is gone from every index, with its archive; the young one is kept
    assert not await redis.exists(
        keys.session("old"),
        keys.session_auth("old"),
        keys.session_commands("old"),
        keys.session_messages("old"),
        keys.session_fence("old"),
    )
    assert await redis.zscore(keys.sessions_index(), "old") is None
    assert await redis.zscore(keys.workspace_sessions("1"), "old") is None
    assert not await redis.sismember(keys.auth_index(), "old")
    assert await redis.exists(keys.session("young"))
    assert result.counts["tombstones_purged"] == 1


async def test_sessions_whose_owner_lease_expired_return_to_the_pool(redis: Redis) -> None:
    # Given owned sessions: lease expired (ready), lease held, lease expired but failed
    now = now_ms()
    await make_session(redis, "lapsed", SessionStatus.READY, at=now, owner="w-dead")
    await make_session(redis, "held", SessionStatus.READY, at=now, owner="w-live")
    await make_session(redis, "finished", SessionStatus.FAILED, at=now, owner="w-dead")
    await redis.srem(keys.unowned_sessions(), "lapsed", "held", "finished")
    await redis.sadd(keys.worker_sessions("w-dead"), "lapsed", "finished")
    await redis.sadd(keys.worker_sessions("w-live"), "held")
    await redis.set(keys.session_lease("held"), "w-live", px=60_000)
    ingest = Ingest()

    # When cleanup runs
    result = await run_cleanup(redis, get_settings(), post=ingest.post, now=now)

    # Then only the lapsed live session lost its owner and waits in the unowned pool; no status changed
    assert await redis.smembers(keys.unowned_sessions()) == {"lapsed"}
    assert await redis.hget(keys.session("lapsed"), "owner") is None
    assert await redis.smembers(keys.worker_sessions("w-dead")) == {"finished"}
    assert await redis.hget(keys.session("held"), "owner") == "w-live"
    assert result.counts["owners_released"] == 1 and ingest.batches == []


async def test_a_racing_worker_update_is_never_overwritten(redis: Redis) -> None:
    # Given cleanup read a session waiting for a scan for 40 minutes
    now = now_ms()
    read = await make_session(redis, "s", SessionStatus.QR, at=now - 40 * MINUTE)
    # When the worker reports it ready before cleanup writes
    await sessions.apply_status(redis, read, SessionStatus.READY, reason=None, occurred_at_ms=now - MINUTE)
    applied = await sessions.stop_for_qr_timeout(redis, read, now=now)

    # Then cleanup's compare-and-set does not apply, and the session stays ready
    stored = await sessions.get_session(redis, "s")
    assert applied is False and stored is not None and stored.status is SessionStatus.READY


async def test_only_one_of_two_simultaneous_runs_works(redis: Redis) -> None:
    # Given 40 stale QR sessions
    now = now_ms()
    for i in range(40):
        await make_session(redis, f"s{i:02}", SessionStatus.QR, at=now - DAY)
    ingest = Ingest()

    # When two runs start at once
    first, second = await asyncio.gather(
        run_cleanup(redis, get_settings(), post=ingest.post, now=now),
        run_cleanup(redis, get_settings(), post=ingest.post, now=now),
    )

    # Then one is skipped on the lock, each session changed once with one event, and the lock is released
    assert sorted([first.skipped, second.skipped]) == [False, True]
    assert first.counts["qr_timed_out"] + second.counts["qr_timed_out"] == 40
    assert sum(len(b) for b in ingest.batches) == 40
    assert not await redis.exists(keys.cleanup_lock())


async def test_a_run_does_not_release_a_lock_it_does_not_hold(redis: Redis) -> None:
    # Given another run holds the lock
    await redis.set(keys.cleanup_lock(), "someone-else", px=60_000)
    # When a run starts
    result = await run_cleanup(redis, get_settings(), post=Ingest().post)
    # Then it is skipped and the other run's lock stays
    assert result.skipped and await redis.get(keys.cleanup_lock()) == "someone-else"


async def test_work_per_run_is_bounded_and_the_next_run_resumes(redis: Redis, env: pytest.MonkeyPatch) -> None:
    # Given 25 stale sessions and runs limited to 10 sessions in pages of 4
    env.setenv("WAGW_CLEANUP_BATCH_SIZE", "4")
    env.setenv("WAGW_CLEANUP_MAX_SESSIONS_PER_RUN", "10")
    get_settings.cache_clear()
    now = now_ms()
    for i in range(25):
        await make_session(redis, f"s{i:02}", SessionStatus.QR, at=now - DAY, created=now - DAY + i)

    # When cleanup runs three times
    runs = [await run_cleanup(redis, get_settings(), post=Ingest().post, now=now) for _ in range(3)]

    # Then each scanned at most 10, the third finished the pass, and every session was handled once
    assert [r.scanned for r in runs] == [10, 10, 5]
    assert [r.pass_complete for r in runs] == [False, False, True]
    assert sum(r.counts["qr_timed_out"] for r in runs) == 25
    assert not await redis.exists(keys.cleanup_cursor())


async def test_the_walk_resumes_when_the_cursor_session_was_removed(redis: Redis, env: pytest.MonkeyPatch) -> None:
    # Given sessions sharing one creation time, and a run that stopped after the first 3
    env.setenv("WAGW_CLEANUP_MAX_SESSIONS_PER_RUN", "3")
    get_settings.cache_clear()
    now = now_ms()
    for i in range(6):
        await make_session(redis, f"s{i}", SessionStatus.READY, at=now, created=1000)
    first = await run_cleanup(redis, get_settings(), post=Ingest().post, now=now)
    # When the session the cursor points at disappears and cleanup runs again
    await redis.zrem(keys.sessions_index(), "s2")
    second = await run_cleanup(redis, get_settings(), post=Ingest().post, now=now)
    # Then it goes on with the sessions after it
    assert first.scanned == 3 and second.scanned == 3 and second.pass_complete


async def test_index_entries_without_a_session_are_dropped(redis: Redis) -> None:
    await redis.zadd(keys.sessions_index(), {"ghost": 1})
    result = await run_cleanup(redis, get_settings(), post=Ingest().post)
    assert result.counts["orphan_index_entries"] == 1 and not await redis.exists(keys.sessions_index())


async def test_events_that_cannot_be_posted_wait_for_the_next_run(redis: Redis) -> None:
    # Given stale sessions and ingest down
    now = now_ms()
    for i in range(3):
        await make_session(redis, f"s{i}", SessionStatus.QR, at=now - DAY)
    down = Ingest(down=True)
    first = await run_cleanup(redis, get_settings(), post=down.post, now=now)
    # When ingest is back and cleanup runs again
    up = Ingest()
    second = await run_cleanup(redis, get_settings(), post=up.post, now=now)
    # Then the events kept by the first run are posted by the second, once
    assert first.events_pending == 3 and first.events_emitted == 0 and first.errors == 1
    assert second.events_emitted == 3 and second.events_pending == 0
    assert set(up.statuses) == {"s0", "s1", "s2"}


async def test_dry_run_shows_the_plan_and_writes_nothing(redis: Redis) -> None:
    # Given the old system's case and a lapsed owner
    now = now_ms()
    await make_session(redis, "scanning", SessionStatus.QR, at=now - 4 * DAY, phone="62811801641")
    await make_session(redis, "connected", SessionStatus.READY, at=now - HOUR, phone="62811801641", owner="w")
    await redis.set(keys.delivery_attempts("d1"), "[]")
    before = {key: await redis.dump(key) for key in await _all_keys(redis)}
    ingest = Ingest()

    # When cleanup runs dry
    result = await run_cleanup(redis, get_settings(), RunOptions(dry_run=True, keep_actions=10), post=ingest.post)

    # Then it lists what it would do, and Redis is byte for byte unchanged, no event sent
    assert {(a.rule.value, a.session_id) for a in result.actions} == {
        ("qr_timed_out", "scanning"),
        ("owners_released", "connected"),
        ("attempt_logs_ttl_set", keys.delivery_attempts("d1")),
    }
    assert {key: await redis.dump(key) for key in await _all_keys(redis)} == before
    assert ingest.batches == [] and result.dry_run


async def test_attempt_logs_and_dedupe_marks_without_ttl_get_one(redis: Redis) -> None:
    # Given an attempt log and a dedupe mark without TTL, and one mark with its TTL
    await redis.rpush(keys.delivery_attempts("d1"), "a")
    await redis.set(keys.event_seen("e1"), "1")
    await redis.set(keys.event_seen("e2"), "1", ex=100)
    # When cleanup runs
    result = await run_cleanup(redis, get_settings(), post=Ingest().post)
    # Then the two without TTL expire with their writers' TTLs; the counts say so
    settings = get_settings()
    assert 0 < await redis.ttl(keys.delivery_attempts("d1")) <= settings.attempt_log_ttl_seconds
    assert 0 < await redis.ttl(keys.event_seen("e1")) <= settings.dedupe_ttl_seconds
    assert 0 < await redis.ttl(keys.event_seen("e2")) <= 100
    assert result.counts["attempt_logs_ttl_set"] == 1 and result.counts["dedupe_marks_ttl_set"] == 1


async def test_redis_auth_archives_without_a_session_are_deleted(redis: Redis) -> None:
    # Given archives for a missing session and for a live one
    await make_session(redis, "alive", SessionStatus.READY, at=now_ms())
    for sid in ("alive", "gone"):
        await redis.hset(keys.session_auth(sid), mapping={"kind": "profile", "data": "x"})
        await redis.sadd(keys.auth_index(), sid)
    # When cleanup runs
    result = await run_cleanup(redis, get_settings(), RunOptions(s3_enabled=False), post=Ingest().post)
    # Then only the orphan is deleted
    assert await redis.smembers(keys.auth_index()) == {"alive"}
    assert await redis.exists(keys.session_auth("alive")) and not await redis.exists(keys.session_auth("gone"))
    assert result.counts["auth_archives_deleted"] == 1


async def _all_keys(redis: Redis) -> list[str]:
    return sorted([str(k) async for k in redis.scan_iter(count=1000)])


async def test_phone_sets_keep_only_live_sessions(redis: Redis) -> None:
    # Given a phone set holding a ready session, a failed one, a tombstone and a session that no longer exists
    now = now_ms()
    phone_set = keys.workspace_phone_sessions("1", "628333")
    await make_session(redis, "ready", SessionStatus.READY, at=now, phone="628333")
    await make_session(redis, "failed", SessionStatus.FAILED, at=now, phone="628333")
    await make_session(redis, "tomb", SessionStatus.STOPPED, at=now, phone="628333", deleted_at=now)
    await redis.sadd(phone_set, "vanished")
    ingest = Ingest()

    # When cleanup runs
    result = await run_cleanup(redis, get_settings(), post=ingest.post, now=now)

    # Then only the live session stays in the set, without any status change or event
    assert await redis.smembers(phone_set) == {"ready"}
    assert result.counts["phone_set_entries_pruned"] == 3 and ingest.batches == []
    assert await redis.hget(keys.session("failed"), "status") == "failed"


async def test_a_session_whose_ids_cannot_travel_in_an_event_is_still_cleaned(redis: Redis) -> None:
    # Given a stale QR session stored with a workspace id the event envelope refuses
    now = now_ms()
    await make_session(redis, "s", SessionStatus.QR, at=now - DAY, workspace_id="bad workspace!")
    ingest = Ingest()
    # When cleanup runs
    result = await run_cleanup(redis, get_settings(), post=ingest.post, now=now)
    # Then the session is stopped, no malformed event is sent, and the error is counted
    assert await redis.hget(keys.session("s"), "status") == "failed"
    assert ingest.batches == [] and result.errors == 1


async def test_events_ingest_throttles_are_posted_again_by_the_next_run(redis: Redis) -> None:
    # Given two stale sessions, and ingest throttling the event of one of them
    now = now_ms()
    await make_session(redis, "a", SessionStatus.QR, at=now - DAY)
    await make_session(redis, "b", SessionStatus.QR, at=now - DAY)
    posted: list[str] = []

    async def throttling(events: Sequence[Event]) -> IngestResponse:
        posted.extend(e.session_id for e in events)
        outcome = {"a": Outcome.THROTTLED, "b": Outcome.ACCEPTED}
        return IngestResponse(results=[EventResult(id=e.id, outcome=outcome[e.session_id]) for e in events])

    # When cleanup runs, then runs again
    first = await run_cleanup(redis, get_settings(), post=throttling, now=now)
    second = await run_cleanup(redis, get_settings(), post=Ingest().post, now=now)

    # Then the throttled event waited in the outbox and went out with the second run, with the same id
    assert first.events_emitted == 1 and first.events_pending == 1
    assert second.events_emitted == 1 and second.events_pending == 0
    assert sorted(posted) == ["a", "b"]
