"""One cleanup run over Redis (and the S3 auth archives): bounded, resumable, safe to start twice.

Rules (see rules.py): QR waits past `qr_timeout_seconds` -> `failed`/`qr_timeout`; disconnected past
`disconnected_delete_after_seconds` -> soft-deleted (`stopped`, tombstone); tombstones past
`tombstone_retention_seconds` -> purged; at most one live session per (workspace, phone) -> the others
`retired`; owners whose lease expired -> back to the unowned pool; auth archives with no session -> deleted;
delivery attempt logs and dedupe marks without a TTL -> given one.

Every write is a compare-and-set Lua script (shared.store.sessions), so a worker update racing with the run
wins. Each status change queues its session.status event in a Redis outbox in the same step; the outbox is
posted to ingest at the end of the run and whatever could not be posted is retried by the next run.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError
from redis.asyncio import Redis

from functions.cleanup.models import CleanupResult, PlannedAction
from functions.cleanup.rules import (
    FIELDS,
    STATUS_RULES,
    TERMINAL,
    Decision,
    Limits,
    Rule,
    SessionView,
    decide,
    pick_duplicates,
    s3_key_session_candidates,
)
from shared import aws
from shared import redis_keys as keys
from shared.commands import StopCommand, enqueue_command
from shared.events import (
    ID_PATTERN,
    Event,
    SessionStatus,
    SessionStatusData,
    SessionStatusEvent,
    event_adapter,
    event_to_json,
)
from shared.ids import new_event_id
from shared.observability import logger
from shared.scripts import script
from shared.settings import Settings
from shared.store import sessions
from shared.store.records import now_ms

_ID = re.compile(ID_PATTERN)
PostEvents = Callable[[Sequence[Event]], Awaitable[Any]]
Progress = Callable[[int, int], None]

S3_AUTH_PREFIX = "auth/"
TTL_KEY_PATTERN = f"{keys.PREFIX}:[ad]*"  # narrows SCAN to attempt logs and dedupe marks (and a few others)
# A phone set's key split around its workspace and phone, so the scan script can build it.
_PHONE_KEY = keys.workspace_phone_sessions("\x01", "\x02")
PHONE_KEY_PARTS: tuple[str, str, str] = (
    _PHONE_KEY.split("\x01")[0],
    _PHONE_KEY.split("\x01")[1].split("\x02")[0],
    _PHONE_KEY.split("\x02")[1],
)


@dataclass(frozen=True)
class ScanRow:
    """A session the scan script returned: what it read, whether its lease is held, its phone set's size."""

    view: SessionView
    lease_held: bool
    phone_set_size: int


@dataclass
class RunOptions:
    dry_run: bool = False
    max_sessions: int | None = None  # None: settings.cleanup_max_sessions_per_run
    deadline: float | None = None  # time.monotonic() after which no new page is started
    s3_enabled: bool | None = None  # None: settings.cleanup_s3_enabled
    keep_actions: int = 0  # list up to this many actions in the result
    progress: Progress | None = None


async def post_via_producer(events: Sequence[Event]) -> Any:
    """The production sink: sign and POST the batch to ingest (shared.producer)."""
    from shared import producer

    return await producer.post_events(events)


async def run_cleanup(
    redis: Redis,
    settings: Settings,
    options: RunOptions | None = None,
    *,
    post: PostEvents | None = None,
    now: int | None = None,
) -> CleanupResult:
    """Run (or with `dry_run`, plan) one bounded cleanup pass. Returns skipped when another run holds the lock.

    `post` sends a batch of events to ingest (default: shared.producer.post_events).
    """
    run = _Run(redis, settings, options or RunOptions(), post, now_ms() if now is None else now)
    return await run.execute()


class _Run:
    def __init__(
        self, redis: Redis, settings: Settings, options: RunOptions, post: PostEvents | None, now: int
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.options = options
        self.post: PostEvents = post or post_via_producer
        self.now = now
        self.dry = options.dry_run
        self.batch = settings.cleanup_batch_size
        self.limit = options.max_sessions or settings.cleanup_max_sessions_per_run
        self.s3_on = settings.cleanup_s3_enabled if options.s3_enabled is None else options.s3_enabled
        self.limits = Limits(
            qr_timeout_ms=settings.qr_timeout_seconds * 1000,
            disconnected_delete_after_ms=settings.disconnected_delete_after_seconds * 1000,
            tombstone_retention_ms=settings.tombstone_retention_seconds * 1000,
        )
        lock_deadline = time.monotonic() + settings.cleanup_lock_seconds * 0.8
        self.deadline = min(options.deadline or lock_deadline, lock_deadline)
        self.result = CleanupResult(dry_run=self.dry)
        self.seen_phone_sets: set[str] = set()
        self.occurred_at = datetime.fromtimestamp(now / 1000, UTC)

    # Run --------------------------------------------------------------------------------------------
    async def execute(self) -> CleanupResult:
        started = time.monotonic()
        token = uuid.uuid4().hex
        if not self.dry:
            acquired = await self.redis.set(
                keys.cleanup_lock(), token, nx=True, px=self.settings.cleanup_lock_seconds * 1000
            )
            if not acquired:
                logger.info("cleanup skipped: another run holds the lock")
                self.result.skipped, self.result.skipped_reason = True, "locked"
                return self.result
        try:
            if not self.dry:
                await self._flush_outbox()  # events a previous run could not post
            await self._scan_sessions()
            await self._sweep_auth_index()
            if self.s3_on:
                await self._sweep_s3()
            await self._sweep_ttls()
            if not self.dry:
                await self._flush_outbox()
            self.result.events_pending = int(await self.redis.llen(keys.cleanup_outbox()))
        finally:
            if not self.dry:
                await script(self.redis, "cleanup_lock_release")(keys=[keys.cleanup_lock()], args=[token])
        self.result.duration_ms = int((time.monotonic() - started) * 1000)
        logger.info("cleanup finished", extra={"result": self.result.model_dump(exclude={"actions"})})
        return self.result

    def _out_of_time(self) -> bool:
        return time.monotonic() >= self.deadline

    def _note(self, rule: Rule, view_id: str, workspace_id: str = "", detail: str = "") -> None:
        self.result.add(rule)
        if len(self.result.actions) < self.options.keep_actions:
            self.result.actions.append(
                PlannedAction(rule=rule, session_id=view_id, workspace_id=workspace_id, detail=detail)
            )

    # Sessions ---------------------------------------------------------------------------------------
    async def _scan_sessions(self) -> None:
        started = time.monotonic()
        raw_cursor = await self.redis.get(keys.cleanup_cursor())
        score, _, member = str(raw_cursor or "").partition(" ")
        total = min(int(await self.redis.zcard(keys.sessions_index())), self.limit)
        while self.result.scanned < self.limit and not self._out_of_time():
            want = min(self.batch, self.limit - self.result.scanned)
            scanned, last_member, last_score, rows = await self._scan_page(score, member, want)
            if scanned:
                await self._process_page(rows)
                self.result.scanned += scanned
                score, member = last_score, last_member
            if self.options.progress:
                self.options.progress(self.result.scanned, total)
            if scanned < want:
                self.result.pass_complete = True
                break
            if not self.dry:
                await self.redis.set(keys.cleanup_cursor(), f"{score} {member}")
        if not self.result.pass_complete and self.result.scanned >= self.limit:
            # Stopped on the limit: the pass is complete if nothing is left after the cursor.
            self.result.pass_complete = (await self._scan_page(score, member, 1))[0] == 0
        if self.result.pass_complete and not self.dry:
            await self.redis.delete(keys.cleanup_cursor())
        elapsed = time.monotonic() - started
        self.result.scan_ms = int(elapsed * 1000)
        self.result.sessions_per_second = round(self.result.scanned / elapsed, 1) if elapsed > 0 else 0.0

    async def _scan_page(self, score: str, member: str, count: int) -> tuple[int, str, str, list[ScanRow]]:
        """The next `count` sessions after the cursor, read and pre-filtered in Redis (cleanup_scan.lua)."""
        reply = await script(self.redis, "cleanup_scan")(
            keys=[keys.sessions_index()],
            args=[
                score,
                member,
                count,
                self.now,
                self.limits.qr_timeout_ms,
                self.limits.disconnected_delete_after_ms,
                self.limits.tombstone_retention_ms,
                " ".join(sorted(TERMINAL)),
                keys.session(""),
                keys.session_lease(""),
                *PHONE_KEY_PARTS,
                0 if self.dry else 1,
            ],
        )
        rows = [
            ScanRow(
                view=SessionView.from_row(str(row[0]), row[1 : 1 + len(FIELDS)]),
                lease_held=bool(int(row[-2])),
                phone_set_size=int(row[-1]),
            )
            for row in reply[3:]
        ]
        return int(reply[0]), str(reply[1]), str(reply[2]), rows

    async def _read(self, ids: Sequence[str]) -> list[SessionView]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for sid in ids:
                pipe.hmget(keys.session(sid), FIELDS)
            rows = await pipe.execute()
        return [SessionView.from_row(sid, row) for sid, row in zip(ids, rows, strict=True)]

    async def _process_page(self, rows: Sequence[ScanRow]) -> None:
        views = [row.view for row in rows]
        decisions: dict[str, Decision] = {v.id: decide(v, self.now, self.limits) for v in views}
        lapsed = [row.view for row in rows if decisions[row.view.id].check_lease and not row.lease_held]
        shared_sets: list[tuple[str, str, str]] = []
        for row in rows:
            v = row.view
            if decisions[v.id].check_phone and v.phone and row.phone_set_size > 1:
                key = keys.workspace_phone_sessions(v.workspace_id, v.phone)
                if key not in self.seen_phone_sets:
                    self.seen_phone_sets.add(key)
                    shared_sets.append((key, v.workspace_id, v.phone))
        changing = frozenset(sid for sid, d in decisions.items() if d.rule is not None)
        retire: list[tuple[SessionView, SessionView]] = []
        prune: list[SessionView] = []
        if shared_sets:
            retire, prune = await self._duplicates(shared_sets, {v.id: v for v in views}, changing)
        retiring = {loser.id for loser, _ in retire}
        released = [v for v in lapsed if v.id not in retiring]
        await self._apply(views, decisions, retire, released, prune)

    async def _duplicates(
        self, phone_sets: Sequence[tuple[str, str, str]], known: dict[str, SessionView], changing: frozenset[str]
    ) -> tuple[list[tuple[SessionView, SessionView]], list[SessionView]]:
        """For phone sets with several members: (loser, winner) pairs to retire, and stale members to drop
        (gone, deleted or terminal; returned with the set's workspace and phone)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for key, _, _ in phone_sets:
                pipe.smembers(key)
            groups = [sorted(str(m) for m in members) for members in await pipe.execute()]
        missing = sorted({m for group in groups for m in group if m not in known})
        views = dict(known)
        views.update({v.id: v for v in await self._read(missing)} if missing else {})
        retire: dict[str, tuple[SessionView, SessionView]] = {}
        prune: list[SessionView] = []
        for (_, workspace_id, phone), group in zip(phone_sets, groups, strict=True):
            members = [views[m] for m in group]
            winner, losers = pick_duplicates(members, exclude=changing)
            if winner is not None:
                for loser in losers:
                    retire.setdefault(loser.id, (loser, winner))
            prune += [
                replace(m, workspace_id=workspace_id, phone=phone)
                for m in members
                if not m.live and m.id not in changing
            ]
        return list(retire.values()), prune

    async def _apply(
        self,
        views: Sequence[SessionView],
        decisions: dict[str, Decision],
        retire: Sequence[tuple[SessionView, SessionView]],
        released: Sequence[SessionView],
        prune: Sequence[SessionView],
    ) -> None:
        planned: list[tuple[Rule, SessionView, SessionView | None]] = [
            (rule, v, None) for v in views if (rule := decisions[v.id].rule) is not None
        ]
        planned += [(Rule.DUPLICATE_RETIRED, loser, winner) for loser, winner in retire]
        planned += [(Rule.OWNER_RELEASED, v, None) for v in released]
        planned += [(Rule.PHONE_SET_PRUNED, v, None) for v in prune]
        if self.dry:
            for rule, view, winner in planned:
                self._note(rule, view.id, view.workspace_id, self._detail(rule, view, winner))
            return
        if not planned:
            return
        ops = [self._op(rule, view, winner) for rule, view, winner in planned]
        replies = await sessions.apply_cleanup_ops(self.redis, ops, now=self.now, outbox_key=keys.cleanup_outbox())
        stops: list[tuple[SessionView, str]] = []
        purged: list[tuple[SessionView, str]] = []
        for (rule, view, winner), reply in zip(planned, replies, strict=True):
            if not sessions.op_applied(reply):
                continue  # the session changed since it was read: the newer state wins
            self._note(rule, view.id, view.workspace_id, self._detail(rule, view, winner))
            if rule in STATUS_RULES and view.owner:
                stops.append((view, STATUS_RULES[rule][1]))
            if rule is Rule.TOMBSTONE_PURGED:
                purged.append((view, sessions.purged_s3_key(reply)))
        if stops:  # the owning worker stops driving the session (it also sees the new status)
            async with self.redis.pipeline(transaction=False) as pipe:
                for view, reason in stops:
                    await enqueue_command(pipe, StopCommand(session_id=view.id, reason=reason))
                await pipe.execute()
        for view, s3_key in purged:  # S3 leftovers (if this fails) are found by the S3 sweep
            await self._delete_s3_archives(view.id, s3_key)

    def _op(self, rule: Rule, view: SessionView, winner: SessionView | None) -> sessions.CleanupOp:
        if rule in STATUS_RULES:
            status, reason = STATUS_RULES[rule]
            return sessions.CleanupOp(
                "transition",
                view.id,
                view.workspace_id,
                view.phone,
                expected=view.status,
                expected_status_at_ms=view.status_at_ms,
                status=status.value,
                reason=reason,
                soft_delete=rule is Rule.DISCONNECTED_DELETED,
                event_json=self._event_json(view, status, reason),
                guard_id=winner.id if winner else "",
                guard_status=SessionStatus.READY.value if winner else "",
                guard_status_at_ms=winner.status_at_ms if winner else "",
            )
        if rule is Rule.TOMBSTONE_PURGED:
            return sessions.CleanupOp(
                "purge", view.id, view.workspace_id, view.phone, expected=view.deleted_at_ms or ""
            )
        if rule is Rule.OWNER_RELEASED:
            return sessions.CleanupOp("release", view.id, expected=view.owner or "")
        if rule is Rule.PHONE_SET_PRUNED:
            return sessions.CleanupOp("unphone", view.id, view.workspace_id, view.phone)
        return sessions.CleanupOp("orphan", view.id)

    def _detail(self, rule: Rule, view: SessionView, winner: SessionView | None) -> str:
        if rule is Rule.DUPLICATE_RETIRED and winner is not None:
            return f"{view.status} -> retired (phone {view.phone} kept by {winner.id})"
        if rule in STATUS_RULES:
            return f"{view.status} -> {STATUS_RULES[rule][0].value} ({STATUS_RULES[rule][1]})"
        if rule is Rule.OWNER_RELEASED:
            return f"owner {view.owner} lost its lease"
        if rule is Rule.PHONE_SET_PRUNED:
            return f"no longer live ({view.status or 'gone'}) for phone {view.phone}"
        return ""

    def _event_json(self, view: SessionView, status: SessionStatus, reason: str) -> str:
        """The session.status event of a change (checked against the envelope's id pattern and phone length,
        then built without a full validation: thousands of these are made per run)."""
        if not (_ID.match(view.workspace_id) and _ID.match(view.id)) or len(view.phone or "") > 32:
            logger.warning("cleanup cannot describe a session change as an event", extra={"session_id": view.id})
            self.result.errors += 1
            return ""
        event = SessionStatusEvent.model_construct(
            id=new_event_id(),
            workspace_id=view.workspace_id,
            session_id=view.id,
            occurred_at=self.occurred_at,
            type="session.status",
            data=SessionStatusData.model_construct(status=status, reason=reason, phone=view.phone),
        )
        return event_to_json(event)

    # Events -----------------------------------------------------------------------------------------
    async def _flush_outbox(self) -> None:
        """Post queued events in ingest-sized batches; keep what failed (or was throttled) for the next run."""
        outbox = keys.cleanup_outbox()
        remaining = int(await self.redis.llen(outbox))
        size = self.settings.max_batch_events
        while remaining > 0:
            raws = [str(r) for r in await self.redis.lrange(outbox, 0, size - 1)]
            if not raws:
                break
            readable: list[tuple[str, Event]] = []
            for raw in raws:
                try:
                    readable.append((raw, event_adapter.validate_json(raw)))
                except ValidationError:
                    logger.error("dropping an unreadable event from the cleanup outbox", extra={"raw": raw[:500]})
                    self.result.errors += 1
            events = [event for _, event in readable]
            try:
                response = await self.post(events) if events else None
            except Exception as exc:  # the whole batch stays queued for the next run
                logger.warning("posting cleanup events failed; they stay queued", extra={"error": repr(exc)})
                self.result.errors += 1
                return
            outcomes = {str(r.id): str(r.outcome) for r in getattr(response, "results", None) or []}
            retry = [raw for raw, event in readable if outcomes.get(event.id) == "throttled"]
            refused = [event.id for event in events if outcomes.get(event.id) == "rejected"]
            if refused:
                logger.error("ingest rejected cleanup events", extra={"event_ids": refused[:20]})
                self.result.errors += len(refused)
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.ltrim(outbox, len(raws), -1)
                if retry:
                    pipe.rpush(outbox, *retry)
                await pipe.execute()
            self.result.events_emitted += len(events) - len(retry) - len(refused)
            remaining -= len(raws)

    # Auth archives ----------------------------------------------------------------------------------
    async def _sweep_auth_index(self) -> None:
        """Walk `auth_index` (SSCAN, cursor kept between runs): archives whose session is gone are deleted."""
        cursor = int(await self.redis.get(keys.cleanup_auth_cursor()) or 0)
        checked = 0
        while True:
            cursor, members = await self.redis.sscan(keys.auth_index(), cursor, count=self.batch)
            ids = [str(m) for m in members]
            checked += len(ids)
            if ids:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for sid in ids:
                        pipe.exists(keys.session(sid))
                    exists = await pipe.execute()
                for sid, present in zip(ids, exists, strict=True):
                    if int(present):
                        continue
                    if self.dry:
                        self._note(Rule.AUTH_ARCHIVE_DELETED, sid, detail="session gone")
                        continue
                    s3_key = await sessions.auth_archive_s3_key(self.redis, sid)
                    if self.s3_on and not await self._delete_s3_archives(sid, s3_key):
                        continue  # keep the index entry so the next run tries again
                    if await sessions.delete_orphan_auth(self.redis, sid):
                        self._note(Rule.AUTH_ARCHIVE_DELETED, sid, detail="session gone")
            if cursor == 0 or checked >= self.limit or self._out_of_time():
                break
        self.result.auth_entries_checked = checked
        if not self.dry:
            if cursor:
                await self.redis.set(keys.cleanup_auth_cursor(), cursor)
            else:
                await self.redis.delete(keys.cleanup_auth_cursor())

    async def _orphaned_s3_keys(self, object_keys: Sequence[str]) -> list[str]:
        """The keys none of whose candidate session ids is an existing session (tombstones count as existing)."""
        candidates = {k: sorted(s3_key_session_candidates(k, S3_AUTH_PREFIX)) for k in object_keys}
        ids = sorted({c for cs in candidates.values() for c in cs})
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for sid in ids:
                pipe.exists(keys.session(sid))
            present = {sid for sid, n in zip(ids, await pipe.execute(), strict=True) if int(n)}
        return [k for k, cs in candidates.items() if cs and not present.intersection(cs)]

    async def _s3(self, operation: str, **kwargs: Any) -> dict[str, Any] | None:
        """One S3 call off the event loop; on failure S3 work stops for this run (counted, logged)."""
        try:
            response: dict[str, Any] = await asyncio.to_thread(getattr(aws.s3(), operation), **kwargs)
        except (BotoCoreError, ClientError) as exc:
            logger.warning(
                "cleanup S3 call failed; S3 work resumes next run", extra={"operation": operation, "error": repr(exc)}
            )
            self.result.errors += 1
            self.s3_on = False
            return None
        return response

    async def _delete_objects(self, object_keys: Sequence[str]) -> bool:
        bucket = self.settings.auth_bucket
        for start in range(0, len(object_keys), 1000):
            chunk = object_keys[start : start + 1000]
            response = await self._s3(
                "delete_objects", Bucket=bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True}
            )
            if response is None or response.get("Errors"):
                if response is not None:
                    logger.warning("cleanup could not delete some S3 objects", extra={"errors": response["Errors"][:5]})
                    self.result.errors += 1
                return False
            self.result.add(Rule.AUTH_S3_OBJECT_DELETED, len(chunk))
        return True

    async def _delete_s3_archives(self, session_id: str, s3_key: str = "") -> bool:
        """Delete the gone session's archive object `s3_key` and the objects under `auth/<session_id>` that
        belong to no existing session."""
        if not self.s3_on:
            return False
        if s3_key and not await self._delete_objects([s3_key]):
            return False
        token: str | None = None
        while True:
            extra = {"ContinuationToken": token} if token else {}
            response = await self._s3(
                "list_objects_v2", Bucket=self.settings.auth_bucket, Prefix=f"{S3_AUTH_PREFIX}{session_id}", **extra
            )
            if response is None:
                return False
            object_keys = [str(o["Key"]) for o in response.get("Contents", [])]
            orphaned = await self._orphaned_s3_keys(object_keys)
            if orphaned and not await self._delete_objects(orphaned):
                return False
            token = response.get("NextContinuationToken") if response.get("IsTruncated") else None
            if not token:
                return True

    async def _sweep_s3(self) -> None:
        """List `auth/` in the archive bucket (continuation token kept between runs); delete orphaned objects."""
        token = await self.redis.get(keys.cleanup_s3_token())
        grace_cutoff = datetime.fromtimestamp((self.now / 1000) - self.settings.cleanup_s3_grace_seconds, UTC)
        checked = 0
        while self.s3_on:
            extra = {"ContinuationToken": token} if token else {}
            response = await self._s3(
                "list_objects_v2",
                Bucket=self.settings.auth_bucket,
                Prefix=S3_AUTH_PREFIX,
                MaxKeys=self.batch,
                **extra,
            )
            if response is None:
                return
            contents = response.get("Contents", [])
            checked += len(contents)
            settled = [str(o["Key"]) for o in contents if o["LastModified"] < grace_cutoff]
            orphaned = await self._orphaned_s3_keys(settled)
            if self.dry:
                for key in orphaned:
                    self._note(Rule.AUTH_S3_OBJECT_DELETED, key, detail="archive of no session")
            elif orphaned and not await self._delete_objects(orphaned):
                return
            token = response.get("NextContinuationToken") if response.get("IsTruncated") else None
            if not token or checked >= self.limit or self._out_of_time():
                break
        self.result.s3_objects_checked = checked
        if not self.dry:
            if token:
                await self.redis.set(keys.cleanup_s3_token(), token)
            else:
                await self.redis.delete(keys.cleanup_s3_token())

    # TTLs of attempt logs and dedupe marks -----------------------------------------------------------
    async def _sweep_ttls(self) -> None:
        """SCAN (never KEYS) for attempt logs and dedupe marks that have no TTL; give them their writer's TTL."""
        ttl_by_prefix = {
            keys.delivery_attempts(""): (Rule.ATTEMPT_LOG_TTL_SET, self.settings.attempt_log_ttl_seconds),
            keys.event_seen(""): (Rule.DEDUPE_MARK_TTL_SET, self.settings.dedupe_ttl_seconds),
        }
        prefixes = tuple(ttl_by_prefix)
        cursor = int(await self.redis.get(keys.cleanup_keyspace_cursor()) or 0)
        examined = checked = 0
        while True:
            cursor, found = await self.redis.scan(cursor, match=TTL_KEY_PATTERN, count=self.batch)
            examined += self.batch
            ours = [str(k) for k in found if str(k).startswith(prefixes)]
            checked += len(ours)
            if ours:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for key in ours:
                        pipe.ttl(key)
                    ttls = await pipe.execute()
                forever = [k for k, ttl in zip(ours, ttls, strict=True) if int(ttl) == -1]
                if forever and not self.dry:
                    async with self.redis.pipeline(transaction=False) as pipe:
                        for key in forever:
                            pipe.expire(key, self._ttl_for(key, ttl_by_prefix)[1], nx=True)
                        set_now = await pipe.execute()
                    forever = [k for k, ok in zip(forever, set_now, strict=True) if ok]
                for key in forever:
                    self._note(self._ttl_for(key, ttl_by_prefix)[0], key, detail="no TTL")
            if cursor == 0 or examined >= self.limit or self._out_of_time():
                break
        self.result.keys_ttl_checked = checked
        if not self.dry:
            if cursor:
                await self.redis.set(keys.cleanup_keyspace_cursor(), cursor)
            else:
                await self.redis.delete(keys.cleanup_keyspace_cursor())

    @staticmethod
    def _ttl_for(key: str, ttl_by_prefix: dict[str, tuple[Rule, int]]) -> tuple[Rule, int]:
        return next(value for prefix, value in ttl_by_prefix.items() if key.startswith(prefix))
