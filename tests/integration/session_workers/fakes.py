"""A session that drives nothing: it records when this worker believed it was driving the session."""

from __future__ import annotations

import contextlib
import itertools
import time
from dataclasses import dataclass
from typing import Any

from session_workers.ownership import FencedOff, Lease
from session_workers.session import SessionBase
from session_workers.worker import Worker
from shared.events import SessionStatus, SessionStatusData, SessionStatusEvent, event_to_json


@dataclass
class Interval:
    session_id: str
    worker_id: str
    start: float
    end: float | None = None


class DrivingLog:
    def __init__(self) -> None:
        self.intervals: list[Interval] = []

    def overlaps(self) -> list[tuple[Interval, Interval]]:
        """Pairs of intervals of one session, by different workers, that overlap in time."""
        found = []
        now = time.monotonic()
        by_session: dict[str, list[Interval]] = {}
        for interval in self.intervals:
            by_session.setdefault(interval.session_id, []).append(interval)
        for intervals in by_session.values():
            ordered = sorted(intervals, key=lambda i: i.start)
            for a, b in itertools.pairwise(ordered):
                if (a.end if a.end is not None else now) > b.start:
                    found.append((a, b))
        return found


class FakeSession(SessionBase):
    log: DrivingLog

    def __init__(self, worker: Worker, lease: Lease, workspace_id: str) -> None:
        super().__init__(worker, lease, workspace_id)
        self.interval = Interval(self.id, worker.worker_id, time.monotonic())
        self.log.intervals.append(self.interval)

    def _end(self) -> None:
        if self.interval.end is None:
            self.interval.end = time.monotonic()

    async def start(self) -> None:
        self.status = SessionStatus.READY
        event = SessionStatusEvent(
            workspace_id=self.workspace_id, session_id=self.id, data=SessionStatusData(status=SessionStatus.READY)
        )
        await self.worker.ownership.emit(self.lease, event_to_json(event))

    def abort(self, reason: str) -> None:
        self._end()
        self.stopping = True
        self.worker.forget(self)

    async def shutdown(self, **kwargs: Any) -> None:
        self._end()
        self.stopping = True
        with contextlib.suppress(FencedOff):
            await self.worker.ownership.release(self.lease, requeue=bool(kwargs.get("requeue")))
        self.worker.forget(self)


def fake_factory(log: DrivingLog) -> type[FakeSession]:
    return type("BoundFakeSession", (FakeSession,), {"log": log})
