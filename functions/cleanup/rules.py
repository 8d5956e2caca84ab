"""What cleanup decides for one session (pure: no Redis, no clock), so every rule can be tested alone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from shared.events import SessionStatus
from shared.store.sessions import CLEANUP_SINCE_FIELD, QR_TIMEOUT_REASON, RETIRED_REASON, TERMINAL_STATUSES

# The hash fields cleanup reads, in this order (one HMGET per session).
FIELDS: tuple[str, ...] = (
    "workspace_id",
    "phone",
    "status",
    "status_at_ms",
    "owner",
    "deleted_at_ms",
    "created_at_ms",
    CLEANUP_SINCE_FIELD,
)
TERMINAL: frozenset[str] = frozenset(s.value for s in TERMINAL_STATUSES)
WAITING_FOR_SCAN: frozenset[str] = frozenset({SessionStatus.QR.value, SessionStatus.PAIRING.value})

DISCONNECTED_DELETE_REASON = "deleted_after_disconnect"
DUPLICATE_REASON = RETIRED_REASON  # the same reason as when `ready` retires them


class Rule(StrEnum):
    """One count per rule, in the result and as a metric."""

    QR_TIMEOUT = "qr_timed_out"
    DISCONNECTED_DELETED = "disconnected_deleted"
    DUPLICATE_RETIRED = "duplicates_retired"
    TOMBSTONE_PURGED = "tombstones_purged"
    OWNER_RELEASED = "owners_released"
    PHONE_SET_PRUNED = "phone_set_entries_pruned"
    ORPHAN_INDEX_ENTRY = "orphan_index_entries"
    AUTH_ARCHIVE_DELETED = "auth_archives_deleted"
    AUTH_S3_OBJECT_DELETED = "auth_s3_objects_deleted"
    ATTEMPT_LOG_TTL_SET = "attempt_logs_ttl_set"
    DEDUPE_MARK_TTL_SET = "dedupe_marks_ttl_set"


# Rules that change a session's status, and so emit a session.status event.
STATUS_RULES: dict[Rule, tuple[SessionStatus, str]] = {
    Rule.QR_TIMEOUT: (SessionStatus.FAILED, QR_TIMEOUT_REASON),
    Rule.DISCONNECTED_DELETED: (SessionStatus.STOPPED, DISCONNECTED_DELETE_REASON),
    Rule.DUPLICATE_RETIRED: (SessionStatus.RETIRED, DUPLICATE_REASON),
}


@dataclass(frozen=True)
class Limits:
    qr_timeout_ms: int
    disconnected_delete_after_ms: int
    tombstone_retention_ms: int


@dataclass(frozen=True)
class SessionView:
    """What cleanup read of one session hash (raw strings; `exists` False when the hash is gone)."""

    id: str
    exists: bool
    workspace_id: str = ""
    phone: str | None = None
    status: str = ""
    status_at_ms: str = "0"
    owner: str | None = None
    deleted_at_ms: str | None = None
    created_at_ms: int = 0
    cleanup_since: str | None = None

    @classmethod
    def from_row(cls, session_id: str, row: Sequence[str | None]) -> SessionView:
        values = dict(zip(FIELDS, row, strict=True))
        if values["workspace_id"] is None and values["status"] is None:
            return cls(id=session_id, exists=False)
        return cls(
            id=session_id,
            exists=True,
            workspace_id=values["workspace_id"] or "",
            phone=values["phone"] or None,
            status=values["status"] or "",
            status_at_ms=values["status_at_ms"] or "0",
            owner=values["owner"] or None,
            deleted_at_ms=values["deleted_at_ms"] or None,
            created_at_ms=_int(values["created_at_ms"]),
            cleanup_since=values[CLEANUP_SINCE_FIELD] or None,
        )

    @property
    def deleted(self) -> bool:
        return self.deleted_at_ms is not None

    @property
    def live(self) -> bool:
        """Counts as the phone's live session: exists, not deleted, not in a terminal status."""
        return self.exists and not self.deleted and self.status not in TERMINAL

    @property
    def status_at(self) -> int:
        return _int(self.status_at_ms)


@dataclass(frozen=True)
class Decision:
    """The one change a session needs (`rule` None: none), and what else cleanup must look at."""

    rule: Rule | None = None
    check_lease: bool = False
    check_phone: bool = False


NOTHING = Decision()


def _int(raw: str | None) -> int:
    try:
        return int(raw) if raw else 0
    except ValueError:
        return 0


def timed_since(view: SessionView) -> int:
    """When the session entered its current status, as far as cleanup knows.

    A refreshed QR moves status_at_ms forward, so cleanup's scan (cleanup_scan.lua) also remembers when it
    first saw the status (the `cleanup_since` marker, `<status>:<ms>`); the earlier of the two counts.
    """
    since = view.status_at
    if view.cleanup_since:
        status, _, first_seen = view.cleanup_since.rpartition(":")
        if status == view.status and first_seen.isdigit():
            since = min(since, int(first_seen))
    return since


def decide(view: SessionView, now: int, limits: Limits) -> Decision:
    """The change one session needs now (duplicates are decided per phone by `pick_duplicates`)."""
    if not view.exists:
        return Decision(rule=Rule.ORPHAN_INDEX_ENTRY)
    if view.deleted:
        if now - _int(view.deleted_at_ms) > limits.tombstone_retention_ms:
            return Decision(rule=Rule.TOMBSTONE_PURGED)
        return NOTHING
    if view.status in TERMINAL:
        return NOTHING
    timeout = (
        limits.qr_timeout_ms
        if view.status in WAITING_FOR_SCAN
        else limits.disconnected_delete_after_ms
        if view.status == SessionStatus.DISCONNECTED.value
        else None
    )
    if timeout is not None and now - timed_since(view) > timeout:
        rule = Rule.QR_TIMEOUT if view.status in WAITING_FOR_SCAN else Rule.DISCONNECTED_DELETED
        return Decision(rule=rule)
    return Decision(check_lease=view.owner is not None, check_phone=view.phone is not None)


def pick_duplicates(
    members: Sequence[SessionView], exclude: frozenset[str] = frozenset()
) -> tuple[SessionView | None, list[SessionView]]:
    """For one (workspace, phone): the ready session that stays, and the other live sessions to retire.

    The ready session with the newest status change wins (then the newest created, then the largest id);
    with no ready session nothing is retired (the timeouts deal with those). `exclude`: sessions another
    rule already changes in this run.
    """
    live = [m for m in members if m.live and m.id not in exclude]
    ready = [m for m in live if m.status == SessionStatus.READY.value]
    if not ready:
        return None, []
    winner = max(ready, key=lambda m: (m.status_at, m.created_at_ms, m.id))
    return winner, sorted((m for m in live if m.id != winner.id), key=lambda m: m.id)


def s3_key_session_candidates(key: str, prefix: str) -> set[str]:
    """Every session id an archive object key `auth/<session_id>...` could belong to.

    The id is followed by a separator we do not know (`/`, `.`, `-`...), so every cut at a non-alphanumeric
    character is a candidate; the object is only orphaned when none of them is an existing session.
    """
    rest = key[len(prefix) :] if key.startswith(prefix) else key
    candidates = {rest[:i] for i, ch in enumerate(rest) if not ch.isalnum() and i > 0}
    if rest:
        candidates.add(rest)
    return candidates
