"""Session status changes are atomic, ordered by occurrence, and `ready` retires the phone's other sessions."""

from __future__ import annotations

from redis.asyncio import Redis

from shared.events import SessionStatus
from shared.store import sessions
from shared.store.records import SessionRecord


async def test_older_status_never_overwrites_newer(redis: Redis) -> None:
    # Given a session that became ready at t=2000
    record = await sessions.create_session(redis, SessionRecord(id="s1", workspace_id="w1"))
    await sessions.apply_status(redis, record, SessionStatus.READY, reason=None, occurred_at_ms=2000)
    # When a disconnect that happened earlier arrives late
    change = await sessions.apply_status(
        redis, record, SessionStatus.DISCONNECTED, reason="offline", occurred_at_ms=1000
    )
    # Then it is ignored
    stored = await sessions.get_session(redis, "s1")
    assert change.applied is False
    assert stored is not None and stored.status is SessionStatus.READY


async def test_ready_retires_other_sessions_of_the_phone(redis: Redis) -> None:
    # Given two older sessions for the same phone in one workspace, and one in another workspace
    for sid, ws in (("old1", "w1"), ("old2", "w1"), ("elsewhere", "w2"), ("new", "w1")):
        await sessions.create_session(redis, SessionRecord(id=sid, workspace_id=ws, phone="62811801641"))
    new = await sessions.get_session(redis, "new")
    assert new is not None
    # When the newest becomes ready
    change = await sessions.apply_status(redis, new, SessionStatus.READY, reason=None, occurred_at_ms=5000)
    # Then the two others in the workspace are retired, and the other workspace's is untouched
    assert sorted(change.retired_session_ids) == ["old1", "old2"]
    for sid in ("old1", "old2"):
        retired = await sessions.get_session(redis, sid)
        assert retired is not None and retired.status is SessionStatus.RETIRED
    other = await sessions.get_session(redis, "elsewhere")
    assert other is not None and other.status is SessionStatus.STARTING


async def test_qr_is_stored_and_cleared_on_ready(redis: Redis) -> None:
    record = await sessions.create_session(redis, SessionRecord(id="s2", workspace_id="w1"))
    assert await sessions.set_qr(redis, "s2", "2@abc", "2026-01-01T00:00:00Z", occurred_at_ms=10)
    with_qr = await sessions.get_session(redis, "s2")
    assert with_qr is not None and with_qr.qr == "2@abc" and with_qr.status is SessionStatus.QR
    await sessions.apply_status(redis, record, SessionStatus.READY, reason=None, occurred_at_ms=20)
    ready = await sessions.get_session(redis, "s2")
    assert ready is not None and ready.qr is None
