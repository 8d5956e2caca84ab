"""The old system's exact case: three accounts for one phone in one workspace, and no cleanup at all."""

from __future__ import annotations

from redis.asyncio import Redis

from functions.cleanup.logic import run_cleanup
from shared import redis_keys as keys
from shared.events import SessionStatus
from shared.settings import get_settings
from shared.store import sessions
from shared.store.records import now_ms
from tests.integration.cleanup.helpers import DAY, HOUR, Ingest, make_session

PHONE = "62811801641"


async def test_only_the_connected_session_is_left_live(redis: Redis) -> None:
    # Given phone 62811801641 in workspace 1 with a 4-day-old `qr_scanning` (our `qr`), a `disconnected`
    # from today and a `connected` (our `ready`) from today, as the old system kept them
    now = now_ms()
    await make_session(redis, "scanning", SessionStatus.QR, at=now - 4 * DAY, phone=PHONE)
    await make_session(redis, "disconnected", SessionStatus.DISCONNECTED, at=now - 2 * HOUR, phone=PHONE)
    await make_session(redis, "connected", SessionStatus.READY, at=now - HOUR, phone=PHONE)
    ingest = Ingest()

    # When cleanup runs
    result = await run_cleanup(redis, get_settings(), post=ingest.post)

    # Then only the connected session is left live for the phone
    live = await redis.smembers(keys.workspace_phone_sessions("1", PHONE))
    assert live == {"connected"}
    kept = await sessions.get_session(redis, "connected")
    assert kept is not None and kept.status is SessionStatus.READY
    scanning = await sessions.get_session(redis, "scanning")
    assert scanning is not None and (scanning.status, scanning.reason) == (SessionStatus.FAILED, "qr_timeout")
    disconnected = await sessions.get_session(redis, "disconnected")
    assert disconnected is not None and disconnected.status is SessionStatus.RETIRED
    # And a session.status event reached ingest for each of the others, none for the connected one
    assert ingest.statuses == {
        "scanning": ("1", "failed", "qr_timeout"),
        "disconnected": ("1", "retired", "superseded_by_newer_session"),
    }
    assert result.counts["qr_timed_out"] == 1 and result.counts["duplicates_retired"] == 1
    assert result.events_emitted == 2 and result.events_pending == 0 and result.pass_complete


async def test_a_second_run_changes_nothing(redis: Redis) -> None:
    # Given the old system's case, cleaned once
    now = now_ms()
    await make_session(redis, "scanning", SessionStatus.QR, at=now - 4 * DAY, phone=PHONE)
    await make_session(redis, "disconnected", SessionStatus.DISCONNECTED, at=now - 2 * HOUR, phone=PHONE)
    await make_session(redis, "connected", SessionStatus.READY, at=now - HOUR, phone=PHONE)
    await run_cleanup(redis, get_settings(), post=Ingest().post)
    before = {sid: await redis.hgetall(keys.session(sid)) for sid in ("scanning", "disconnected", "connected")}

    # When cleanup runs again
    ingest = Ingest()
    result = await run_cleanup(redis, get_settings(), post=ingest.post)

    # Then nothing changes and no event is sent
    after = {sid: await redis.hgetall(keys.session(sid)) for sid in ("scanning", "disconnected", "connected")}
    assert after == before
    assert ingest.batches == [] and sum(result.counts.values()) == 0
