"""Events a worker took from its pages but could not write to its outbox yet (Redis unreachable, or the session
stopped driving for safety): kept in an append-only file on local disk until Redis takes them.

A page acknowledges a message to WhatsApp before the worker writes its event, and WhatsApp does not send it
again, so such an event must not be dropped when Redis is away: it waits here and reaches the outbox when Redis is
back (`worker_handover_emit.lua`). The file is the store (memory holds only a per-session count), so the spool is
bounded by `max_bytes` of disk, not by memory, and a worker restarted with the same id finds what its previous
incarnation left (a SIGKILL during an outage loses nothing that reached the file).

Kinds: `fact` events (a message received, sent from the phone, acked, failed) are true whoever owns the session
now, and are appended whatever the lease; `state` events (session status, QR, pairing code) are appended only while
the lease still names this worker with the same fencing token, since a newer owner reports its own state.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from shared.observability import logger

FACT_TYPES = ("message.",)
DEFAULT_MAX_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class Spooled:
    session_id: str
    fence: int
    kind: str  # fact | state
    event_json: str

    def line(self) -> str:
        return json.dumps({"s": self.session_id, "f": self.fence, "k": self.kind, "e": self.event_json}) + "\n"

    @classmethod
    def parse(cls, line: str) -> Spooled:
        row = json.loads(line)
        return cls(str(row["s"]), int(row["f"]), str(row["k"]), str(row["e"]))


def kind_of(event_type: str) -> str:
    return "fact" if event_type.startswith(FACT_TYPES) else "state"


class EventSpool:
    def __init__(self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.offset = 0  # byte position of the first line not yet written to Redis
        self.per_session: Counter[str] = Counter()
        self.refused = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            for entry in self._read(0, None)[0]:
                self.per_session[entry.session_id] += 1
            if self.per_session:
                logger.warning(
                    "found events spooled by an earlier run; they go to the outbox",
                    extra={"events": sum(self.per_session.values()), "path": str(path)},
                )

    def __len__(self) -> int:
        return sum(self.per_session.values())

    def holds(self, session_id: str) -> bool:
        return self.per_session[session_id] > 0

    def add(self, session_id: str, fence: int, event_type: str, event_json: str) -> bool:
        """Keep one event; False (and an error log) only when the disk bound is reached."""
        entry = Spooled(session_id, fence, kind_of(event_type), event_json)
        line = entry.line().encode()
        size = self.path.stat().st_size if self.path.exists() else 0
        if size + len(line) > self.max_bytes:
            self.refused += 1
            logger.error("event spool full; event dropped", extra={"session_id": session_id, "bytes": size})
            return False
        with self.path.open("ab") as handle:
            handle.write(line)
            handle.flush()
        self.per_session[session_id] += 1
        return True

    def peek(self, limit: int) -> tuple[list[Spooled], int]:
        """The oldest `limit` events and the offset just past them (give it to `done` once they are written)."""
        if not self.per_session:
            return [], self.offset
        return self._read(self.offset, limit)

    def done(self, entries: list[Spooled], next_offset: int) -> None:
        for entry in entries:
            self.per_session[entry.session_id] -= 1
            if self.per_session[entry.session_id] <= 0:
                del self.per_session[entry.session_id]
        self.offset = next_offset
        if not self.per_session:
            self.offset = 0
            with self.path.open("wb"):
                pass  # every event is in Redis: start the file afresh

    def _read(self, offset: int, limit: int | None) -> tuple[list[Spooled], int]:
        entries: list[Spooled] = []
        if not self.path.exists():
            return entries, offset
        with self.path.open("rb") as handle:
            handle.seek(offset)
            while limit is None or len(entries) < limit:
                raw = handle.readline()
                if not raw.endswith(b"\n"):
                    break  # end of file (or a line cut short by a crash while writing it)
                offset += len(raw)
                try:
                    entries.append(Spooled.parse(raw.decode()))
                except (ValueError, KeyError):
                    logger.error("unreadable spool line skipped", extra={"path": str(self.path)})
        return entries, offset
