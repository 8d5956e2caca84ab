"""Building sessions in given states, and an in-memory stand-in for ingest."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from redis.asyncio import Redis

from shared.events import Event, SessionStatus, SessionStatusEvent
from shared.settings import get_settings
from shared.store import sessions
from shared.store.records import SessionRecord

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR


async def make_session(
    redis: Redis,
    session_id: str,
    status: SessionStatus,
    *,
    at: int,
    workspace_id: str = "1",
    phone: str | None = None,
    created: int | None = None,
    owner: str | None = None,
    deleted_at: int | None = None,
) -> SessionRecord:
    record = SessionRecord(
        id=session_id,
        workspace_id=workspace_id,
        phone=phone,
        status=status,
        status_at_ms=at,
        owner=owner,
        created_at_ms=at if created is None else created,
        updated_at_ms=at,
        deleted_at_ms=deleted_at,
    )
    return await sessions.create_session(redis, record)


@dataclass
class Ingest:
    """Collects what cleanup posts; `down` makes it fail like an unreachable ingest."""

    batches: list[list[Event]] = field(default_factory=list)
    down: bool = False

    async def post(self, events: Sequence[Event]) -> None:
        if self.down:
            raise ConnectionError("ingest unreachable")
        assert len(events) <= get_settings().max_batch_events
        self.batches.append(list(events))

    @property
    def statuses(self) -> dict[str, tuple[str, str, str | None]]:
        """session_id -> (workspace_id, status, reason) of every session.status event received."""
        out: dict[str, tuple[str, str, str | None]] = {}
        for batch in self.batches:
            for event in batch:
                assert isinstance(event, SessionStatusEvent)
                out[event.session_id] = (event.workspace_id, event.data.status.value, event.data.reason)
        return out
