"""The session worker: claims sessions up to capacity, keeps their leases, drives them, posts their events.

Loops: heartbeat (register + renew every lease in one round trip), watchdog (stop driving a session before its
lease could lapse), claim (least-loaded first, toward a fair share of live workers), orphans (requeue sessions of
workers that stopped heartbeating, drain their outboxes), outbox (post our events), auth backup, metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import secrets
import socket
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError

from session_workers.auth import AuthArchive, AuthStore
from session_workers.browser import BrowserHost, SessionBrowser, make_host
from session_workers.health import HealthServer, liveness
from session_workers.metrics import WorkerMetrics, browser_pss_bytes
from session_workers.outbox import OutboxPoster, UnconfirmedEvents, poster_for
from session_workers.ownership import FencedOff, Lease, Ownership
from session_workers.session import BrowserSession, SessionBase
from session_workers.spool import EventSpool
from shared import redis_keys as keys
from shared.observability import logger
from shared.redis_client import redis_password
from shared.scripts import script
from shared.settings import Settings, get_settings
from shared.store.records import now_ms

SessionFactory = Callable[["Worker", Lease, str], SessionBase]
PROFILE_START_CONCURRENCY = 6
CONTEXT_STARTS_PER_CORE = 4
ORPHAN_DRAIN_LOCK_MS = 30_000
SPOOL_BATCH = 100
# A context restored ahead of a takeover (see Worker._prepare_takeover) that no claim used by then is closed.
PREPARED_TTL_SECONDS = 30.0
SPOOL_RETRY_SECONDS = 0.5
# A flush attempt that has not finished by then is abandoned and tried again (a repeat is dropped at ingest): in a
# chaos run, one attempt begun while Redis was paused never returned after it resumed, and its events waited
# until the worker stopped.
SPOOL_FLUSH_TIMEOUT_SECONDS = 10.0
DEFAULT_SPOOL_DIR = Path(tempfile.gettempdir()) / "wagw-spool"


def start_concurrency(settings: Settings) -> int:
    """How many sessions the worker opens or restores at once (`worker_start_concurrency`, else by strategy)."""
    if settings.worker_start_concurrency is not None:
        return settings.worker_start_concurrency
    if settings.auth_strategy == "context":
        return max(PROFILE_START_CONCURRENCY, CONTEXT_STARTS_PER_CORE * (os.cpu_count() or 1))
    return PROFILE_START_CONCURRENCY


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{secrets.token_hex(4)}"


class Worker:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        host: BrowserHost | None = None,
        session_factory: SessionFactory | None = None,
        health_port: int | None = -1,
        ingest_url: str | None = None,
        spool_dir: Path | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.worker_id = self.settings.worker_id or default_worker_id()
        self.capacity = self.settings.worker_capacity
        self.session_factory: SessionFactory = session_factory or BrowserSession
        self._host = host
        self._own_host = host is None and session_factory is None
        self.health_port = self.settings.health_port if health_port == -1 else health_port
        self.ingest_url = ingest_url
        # Events taken from pages while Redis is unreachable wait here (on local disk) for the outbox.
        self.spool = EventSpool((spool_dir or DEFAULT_SPOOL_DIR) / f"{self.worker_id}.jsonl")
        self.spool_wake = asyncio.Event()
        self.unconfirmed = UnconfirmedEvents()
        self.redis_run_id: str | None = None  # the Redis server's identity: it changes on a failover or a restart
        self.sessions: dict[str, SessionBase] = {}
        self.metrics = WorkerMetrics()
        self.outbox_wake = asyncio.Event()
        self.stop_requested = asyncio.Event()
        self.browser_relaunched = asyncio.Event()
        self.browser_relaunched.set()
        self.draining = False
        self.started = False
        # redis-py can swallow a cancel on Python 3.11 (asyncio.wait_for around its socket writes), so loops also
        # check this flag: after kill() nothing of this worker may claim, renew or post again.
        self.killed = asyncio.Event()
        self.heartbeat_ok_at = 0.0
        self._loops: list[asyncio.Task[Any]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._orphans_draining: set[str] = set()
        # `context`: sessions of a silent worker whose storage this worker restored into fresh contexts while their
        # leases ran out (session id -> (archive sha256, the context, when)); only a claim uses them.
        self.prepared: dict[str, tuple[str, SessionBrowser, float]] = {}
        self._preparing: set[str] = set()
        # Held while a session loads its archive, restores it and loads its page (also when a crash reopens it).
        self.start_slots = asyncio.Semaphore(start_concurrency(self.settings))
        self.health: HealthServer | None = None
        self.hb_s = self.settings.heartbeat_interval_ms / 1000
        self.ttl_s = self.settings.lease_ttl_ms / 1000

    # --- plumbing ----------------------------------------------------------------------------------------
    @property
    def host(self) -> BrowserHost:
        if self._host is None:
            raise RuntimeError("this worker has no browser host")
        return self._host

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background_done)
        return task

    def _background_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("background task failed", exc_info=task.exception())

    def forget(self, session: SessionBase) -> None:
        if self.sessions.get(session.id) is session:
            del self.sessions[session.id]

    def status_counts(self) -> Counter[str]:
        return Counter(str(s.status.value) if s.status else "claimed" for s in self.sessions.values())

    # --- start / stop ------------------------------------------------------------------------------------
    async def start(self) -> None:
        url = self.settings.redis_url
        password = await asyncio.to_thread(redis_password)
        # Each session holds two blocking reads (its command stream and the read watcher); redis-py 8's pools stop
        # at 100 connections by default, which 50 sessions exhaust and starve the heartbeat.
        pool_size = 3 * self.capacity + 50
        self.redis = Redis.from_url(url, decode_responses=True, password=password, max_connections=pool_size)
        self.raw_redis = Redis.from_url(url, decode_responses=False, password=password)
        self.ownership = Ownership(self.redis, self.worker_id, self.settings.lease_ttl_ms)
        self.auth = AuthStore(self.raw_redis, self.worker_id)
        self.spawn(self.auth.warm())  # in the background: an unreachable key service must not hold up the start
        self.http = httpx.AsyncClient(timeout=15)
        self.poster: OutboxPoster = poster_for(
            self.redis,
            self.worker_id,
            self.http,
            self.ingest_url,
            self.settings.outbox_batch_size,
            self.settings.outbox_backoff_max_seconds,
            self.settings.outbox_linger_seconds,
        )
        self.poster.unconfirmed = self.unconfirmed
        if self._host is None and self._own_host:
            self._host = make_host(self.settings)
        if self._host is not None:
            self._host.on_browser_lost = self._on_browser_lost
            await self._host.start()
        await self._heartbeat_once()
        if self.health_port is not None:
            self.health = HealthServer(
                {"/healthz": self._healthz, "/readyz": self._readyz, "/metrics": self._metrics_text},
                port=self.health_port,
            )
            await self.health.start()
        self._loops = [
            asyncio.create_task(self._heartbeat_loop(), name="heartbeat"),
            asyncio.create_task(self._watchdog_loop(), name="watchdog"),
            asyncio.create_task(self._claim_loop(), name="claim"),
            asyncio.create_task(self.poster.run(self.outbox_wake, stop=self.killed), name="outbox"),
            asyncio.create_task(self._spool_loop(), name="spool"),
            asyncio.create_task(self._backup_loop(), name="backup"),
            asyncio.create_task(self._metrics_loop(), name="metrics"),
        ]
        self.started = True
        logger.info(
            "session worker started",
            extra={"worker_id": self.worker_id, "capacity": self.capacity, "strategy": self.settings.auth_strategy},
        )

    def request_stop(self) -> None:
        self.stop_requested.set()

    async def run(self) -> None:
        await self.start()
        try:
            await self.stop_requested.wait()
        finally:
            await self.stop()

    async def stop(self) -> None:
        """Graceful (SIGTERM): stop claiming, save every session, release leases to the pool, flush, exit."""
        if not self.started:
            return
        self.started = False
        self.draining = True
        deadline = time.monotonic() + self.settings.stop_timeout_seconds
        for task in self._loops:
            if task.get_name() in ("claim", "backup", "metrics"):
                task.cancel()
        self._expire_prepared(everything=True)
        sessions = list(self.sessions.values())
        if sessions:
            budget = max(1.0, deadline - time.monotonic() - 5)
            # A few at a time, each handed back as soon as it is saved, so the next owner starts restoring the first
            # ones while the rest are still being captured (all at once, every lease came back only at the end).
            slots = asyncio.Semaphore(start_concurrency(self.settings))

            async def hand_back(session: SessionBase) -> None:
                async with slots:
                    if session.stopping or session._stop_task is not None:
                        return  # it stopped on its own while waiting (logout, fenced off, failed)
                    await session.shutdown(save=True, requeue=True)

            _done, pending = await asyncio.wait(
                [asyncio.ensure_future(hand_back(s)) for s in sessions if s._stop_task is None]
                or [asyncio.ensure_future(asyncio.sleep(0))],
                timeout=budget,
            )
            for task in pending:
                task.cancel()
        for task in self._loops:
            if task.get_name() in ("outbox", "spool"):
                task.cancel()
        drained = False
        with contextlib.suppress(RedisError, OSError):
            await self._flush_spool(deadline - 3)
            drained = await self.poster.drain_all(deadline - 1) and not self.spool
        await self._cancel_loops()
        with contextlib.suppress(RedisError, OSError):
            if drained and not self.sessions:
                await script(self.redis, "worker_deregister")(
                    keys=[
                        keys.workers(),
                        keys.outbox(self.worker_id),
                        keys.worker_sessions(self.worker_id),
                        keys.worker_info(self.worker_id),
                    ],
                    args=[self.worker_id, now_ms() + 10**9],
                )
        await self._close_resources()
        logger.info("session worker stopped", extra={"worker_id": self.worker_id, "outbox_drained": drained})

    def kill(self) -> None:
        """Stop at once without releasing or saving anything (tests use it to stand in for SIGKILL)."""
        self.started = False
        self.draining = True
        self.killed.set()
        for task in self._loops:
            task.cancel()
        for session in list(self.sessions.values()):
            session.abort("killed")  # cancels its tasks; its page is closed by close_after_kill (the OS would)
        self.spawn(self._cancel_loops(poll_s=0.05))

    async def _cancel_loops(self, poll_s: float = 1.0) -> None:
        """Cancel the loops and wait until they are gone (re-cancelling: a cancel can be swallowed in a race)."""
        pending = {t for t in self._loops if not t.done()}
        while pending:
            for task in pending:
                task.cancel()
            _done, pending = await asyncio.wait(pending, timeout=poll_s)

    async def close_after_kill(self) -> None:
        await self._cancel_loops()
        await asyncio.wait(list(self._background), timeout=10) if self._background else None
        await self._close_resources()

    async def _close_resources(self) -> None:
        if self.health is not None:
            await self.health.stop()
        if self._host is not None and self._own_host:
            with contextlib.suppress(Exception):
                await self._host.close()
        await self.http.aclose()
        await self.redis.aclose()
        await self.raw_redis.aclose()

    # --- the spool: events waiting for Redis ------------------------------------------------------------
    def hand_on(self, session_id: str, fence: int, event_type: str, event_json: str) -> None:
        """Keep an event a session could not write (Redis unreachable, or it stopped driving) for the outbox."""
        if self.spool.add(session_id, fence, event_type, event_json):
            self.spool_wake.set()

    async def flush_spool_once(self) -> bool:
        """Write the oldest spooled events to the outbox; True when some were written."""
        entries, next_offset = self.spool.peek(SPOOL_BATCH)
        if not entries:
            return False
        async with asyncio.timeout(SPOOL_FLUSH_TIMEOUT_SECONDS):
            appended = await self.ownership.hand_over(entries)
        self.spool.done(entries, next_offset)
        for entry in entries:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                event_id = str(json.loads(entry.event_json)["id"])
                self.unconfirmed.written(event_id, entry.session_id, entry.fence, entry.kind, entry.event_json)
        self.outbox_wake.set()
        logger.info("spooled events handed to the outbox", extra={"events": len(entries), "appended": appended})
        return True

    async def _spool_loop(self) -> None:
        while not self.killed.is_set():
            try:
                if await self.flush_spool_once():
                    continue
            except (RedisError, OSError) as exc:
                logger.warning("spool flush failed; retrying", extra={"error": repr(exc), "spooled": len(self.spool)})
                await asyncio.sleep(SPOOL_RETRY_SECONDS)
                continue
            except Exception:  # never let the loop end: its events would wait until the worker stops
                logger.exception("spool flush failed unexpectedly; retrying", extra={"spooled": len(self.spool)})
                await asyncio.sleep(SPOOL_RETRY_SECONDS)
                continue
            self.spool_wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self.spool_wake.wait()

    def _check_redis_identity(self, run_id: str) -> None:
        """A new server (a replica promoted at failover, or a restart from persistence) may lack the last writes."""
        if self.redis_run_id is not None and run_id != self.redis_run_id:
            logger.warning("redis is a new server (failover or restart)", extra={"run_id": run_id})
            self._rewrite_unconfirmed()
        self.redis_run_id = run_id

    def _rewrite_unconfirmed(self) -> None:
        """Write again every event ingest has not confirmed: the new server may have lost the outbox's last writes
        (a repeat of one that survived is dropped at ingest by its id)."""
        taken = self.unconfirmed.take()
        for event in taken:
            self.spool.add(event.session_id, event.fence, event.event_type, event.event_json)
        if taken:
            logger.info("redis is back: unconfirmed events written again", extra={"events": len(taken)})
            self.spool_wake.set()

    async def _flush_spool(self, deadline: float) -> None:
        while self.spool and time.monotonic() < deadline:
            try:
                await self.flush_spool_once()
            except (RedisError, OSError):
                await asyncio.sleep(SPOOL_RETRY_SECONDS)

    # --- heartbeat and watchdog --------------------------------------------------------------------------
    async def _heartbeat_once(self) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(keys.workers(), {self.worker_id: now_ms()})
            pipe.hset(
                keys.worker_info(self.worker_id),
                mapping={
                    "sessions": len(self.sessions),
                    "capacity": self.capacity,
                    "host": socket.gethostname(),
                    "strategy": self.settings.auth_strategy,
                    "draining": int(self.draining),
                },
            )
            pipe.info("server")
            server: Any = (await pipe.execute())[-1]
        self._check_redis_identity(str(server.get("run_id", "")))
        sessions = list(self.sessions.values())
        results = await self.ownership.renew([s.lease for s in sessions])
        for session, renewed in zip(sessions, results, strict=True):
            if not renewed and not session.stopping:
                self.metrics.lost_leases += 1
                session.abort("lease_lost")
        self.heartbeat_ok_at = time.monotonic()

    async def _heartbeat_loop(self) -> None:
        while not self.killed.is_set():
            await asyncio.sleep(self.hb_s)
            if self.killed.is_set():
                return
            try:
                await self._heartbeat_once()
            except (RedisError, OSError) as exc:
                logger.warning("heartbeat failed", extra={"error": repr(exc)})

    async def _watchdog_loop(self) -> None:
        margin = self.settings.lease_safety_margin_ms / 1000
        while not self.killed.is_set():
            await asyncio.sleep(min(0.25, self.hb_s / 4))
            now = time.monotonic()
            for session in list(self.sessions.values()):
                if session.lease.expired(margin, now):
                    self.metrics.lost_leases += 1
                    session.abort("lease_expiring")

    # --- claiming ----------------------------------------------------------------------------------------
    async def _claim_loop(self) -> None:
        interval = self.settings.claim_interval_ms / 1000
        own_checked = 0.0
        while not self.draining:
            try:
                if time.monotonic() - own_checked > 10:
                    # A previous incarnation with this worker id (a restart) may have left sessions behind.
                    own_checked = time.monotonic()
                    await self.ownership.requeue_orphans(self.worker_id)
                await self._requeue_orphans()
                await self.claim_round()
                self._expire_prepared()
            except (RedisError, OSError) as exc:
                logger.warning("claim round failed", extra={"error": repr(exc)})
            await asyncio.sleep(interval * random.uniform(0.7, 1.3))

    async def _live_loads(self) -> dict[str, int]:
        alive_since = now_ms() - int(2 * self.settings.heartbeat_interval_ms + 500)
        members: Any = await self.redis.zrangebyscore(keys.workers(), alive_since, "+inf")
        ids = [str(w) for w in members if w != self.worker_id]
        loads = {self.worker_id: len(self.sessions)}
        if ids:
            async with self.redis.pipeline(transaction=False) as pipe:
                for worker_id in ids:
                    pipe.hmget(keys.worker_info(worker_id), "sessions", "draining")
                rows = await pipe.execute()
            for worker_id, (sessions, draining) in zip(ids, rows, strict=True):
                if draining != "1":
                    loads[worker_id] = int(sessions or 0)
        return loads

    async def claim_round(self) -> int:
        """Claim unowned sessions toward this worker's fair share; the least-loaded worker always takes one."""
        if self.draining:
            return 0
        free = self.capacity - len(self.sessions)
        if free <= 0:
            return 0
        unowned = int(await self.redis.scard(keys.unowned_sessions()))  # type: ignore[misc]
        if unowned == 0:
            return 0
        loads = await self._live_loads()
        mine = loads[self.worker_id]
        fair = math.ceil((unowned + sum(loads.values())) / len(loads))
        want = min(free, fair - mine)
        if want <= 0:
            if mine > min(loads.values()):
                return 0
            want = 1
        candidates: Any = await self.redis.srandmember(keys.unowned_sessions(), want * 2 + 2)  # type: ignore[misc]
        if self.prepared:  # sessions restored ahead of this claim first
            ready = list(self.prepared)
            open_ones: Any = await self.redis.smismember(keys.unowned_sessions(), ready)  # type: ignore[misc]
            first = [sid for sid, is_free in zip(ready, open_ones, strict=True) if is_free]
            candidates = first + [c for c in candidates or [] if c not in first]
        claimed = 0
        for session_id in candidates or []:
            if claimed >= want or self.draining:
                break
            if session_id in self.sessions:
                continue
            lease = await self.ownership.claim(session_id)
            if lease is None:
                continue
            workspace_id: Any = await self.redis.hget(keys.session(session_id), "workspace_id")  # type: ignore[misc]
            if self.draining:  # stopped while claiming (a swallowed cancel gets here): never drive it
                await self._hand_back(lease)
                break
            session = self.session_factory(self, lease, str(workspace_id or "unknown"))
            self.sessions[session_id] = session
            self.metrics.claims += 1
            claimed += 1
            session.start_task = self.spawn(self._start_session(session))
        return claimed

    async def _hand_back(self, lease: Lease) -> None:
        """A lease claimed while stopping goes back to the pool; a killed worker (SIGKILL) leaves it to lapse."""
        if not self.killed.is_set():
            with contextlib.suppress(FencedOff, RedisError, OSError):
                await self.ownership.release(lease, requeue=True)

    async def _start_session(self, session: SessionBase) -> None:
        async with self.start_slots:
            if session.stopping:
                return
            try:
                await session.start()
            except FencedOff:
                session.abort("fenced_off")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.exception("session failed to start", extra={"session_id": session.id})
                from shared.events import SessionStatus

                session.request_shutdown(
                    save=False, requeue=False, status=SessionStatus.FAILED, reason=f"start_failed: {exc!r}"[:300]
                )

    # --- orphans: sessions and outboxes of dead workers --------------------------------------------------
    async def _requeue_orphans(self) -> None:
        now = now_ms()
        suspect_before = now - int(2 * self.settings.heartbeat_interval_ms + 500)
        dead_before = now - 3 * self.settings.lease_ttl_ms
        stale: Any = await self.redis.zrangebyscore(keys.workers(), "-inf", suspect_before, withscores=True)
        for worker_id, score in stale:
            if worker_id == self.worker_id:
                continue
            if score >= dead_before and worker_id not in self._preparing and self._prepares_takeovers:
                self._preparing.add(worker_id)
                self.spawn(self._prepare_takeover(str(worker_id)))
            moved = await self.ownership.requeue_orphans(worker_id)
            if moved:
                logger.info("requeued sessions of a silent worker", extra={"dead": worker_id, "sessions": moved})
            if score < dead_before and worker_id not in self._orphans_draining:
                self._orphans_draining.add(worker_id)
                self.spawn(self._drain_orphan(worker_id, int(dead_before)))

    async def _prepare_takeover(self, silent_id: str) -> None:
        """A silent worker's leases run out within a lease TTL of its last heartbeat, and nobody may drive its
        sessions before that. Meanwhile this worker's cores are idle: restore the storage of its share of them
        into fresh contexts (archive read and opened, databases written on a blank page of the site's origin: no
        page of the site is loaded, nothing connects), so a claim only has to load the site. A claim prefers them;
        `BrowserSession._open` uses one only if the archive it loads under the lease is the same."""
        try:
            sessions: Any = await self.redis.smembers(keys.worker_sessions(silent_id))  # type: ignore[misc]
            share = math.ceil(len(sessions) / len(await self._live_loads()))
            room = self.capacity - len(self.sessions) - len(self.prepared)
            picks = [str(s) for s in sessions if s not in self.sessions and s not in self.prepared]
            random.shuffle(picks)
            await asyncio.gather(*(self._prepare(sid) for sid in picks[: max(0, min(share, room))]))
        except (RedisError, OSError) as exc:
            logger.warning("preparing a takeover failed", extra={"silent": silent_id, "error": repr(exc)})
        finally:
            self._preparing.discard(silent_id)

    async def _prepare(self, session_id: str) -> None:
        async with self.start_slots:
            # Once the lease is gone the session is claimed and started as usual; a worker that stops preparing
            # (draining, its browser lost) leaves it.
            if self.draining or session_id in self.sessions or not self.host.connected:
                return
            if not await self.redis.exists(keys.session_lease(session_id)):
                return
            try:
                archive = await self.auth.load(session_id)
                if archive is None or archive.strategy != self.host.strategy or archive.stale:
                    return
                browser = await self.host.open(session_id, archive.raw, on_gone=lambda: None)
            except Exception as exc:
                logger.debug("no restore ahead of the claim", extra={"session_id": session_id, "error": repr(exc)})
                return
            if self.draining or session_id in self.prepared:
                await browser.close()
                return
            self.prepared[session_id] = (archive.sha256, browser, time.monotonic())
            self.metrics.prepared_restores += 1

    @property
    def _prepares_takeovers(self) -> bool:
        # A worker built without a browser (the tests' fakes, a stand-in page) has nothing to prepare in.
        return self.settings.context_prepare_takeover and self._host is not None and self._host.strategy == "context"

    def take_prepared(self, session_id: str, archive: AuthArchive) -> SessionBrowser | None:
        """The context restored ahead of this claim, if it holds the very archive the session loaded."""
        found = self.prepared.pop(session_id, None)
        if found is None:
            return None
        sha, browser, _at = found
        page = browser.prepared_page
        if sha != archive.sha256 or archive.stale or page is None or page.is_closed():
            self.spawn(browser.close())
            return None
        self.metrics.prepared_used += 1
        return browser

    def _expire_prepared(self, everything: bool = False) -> None:
        now = time.monotonic()
        for session_id, (_sha, browser, at) in list(self.prepared.items()):
            if everything or now - at > PREPARED_TTL_SECONDS:
                del self.prepared[session_id]
                self.spawn(browser.close())

    async def _drain_orphan(self, dead_id: str, dead_before: int) -> None:
        lock = keys.outbox_drain_lock(dead_id)
        try:
            if not await self.redis.set(lock, self.worker_id, nx=True, px=ORPHAN_DRAIN_LOCK_MS):
                return
            poster = poster_for(
                self.redis,
                dead_id,
                self.http,
                self.ingest_url,
                self.settings.outbox_batch_size,
                self.settings.outbox_backoff_max_seconds,
            )
            while not self.draining and await poster.depth() > 0:
                if await self.redis.get(lock) != self.worker_id:
                    return
                await self.redis.pexpire(lock, ORPHAN_DRAIN_LOCK_MS)
                delay = await poster.drain_once()
                if delay:
                    await asyncio.sleep(min(delay, 5))
            done = await script(self.redis, "worker_deregister")(
                keys=[keys.workers(), keys.outbox(dead_id), keys.worker_sessions(dead_id), keys.worker_info(dead_id)],
                args=[dead_id, dead_before],
            )
            if int(done):
                logger.info("drained and deregistered a dead worker", extra={"dead": dead_id})
        finally:
            self._orphans_draining.discard(dead_id)
            with contextlib.suppress(RedisError, OSError):
                if await self.redis.get(lock) == self.worker_id:
                    await self.redis.delete(lock)

    # --- backups, browser crashes, metrics, health -------------------------------------------------------
    async def _backup_loop(self) -> None:
        while not self.killed.is_set():
            await asyncio.sleep(self.settings.auth_backup_interval_seconds)
            await self.backup_all()

    async def backup_all(self) -> int:
        saved = 0
        for session in list(self.sessions.values()):
            if session.stopping:
                continue
            try:
                saved += int(await session.backup())
            except FencedOff:
                session.abort("fenced_off")
            except Exception:
                logger.exception("auth backup failed", extra={"session_id": session.id})
        return saved

    def _on_browser_lost(self) -> None:
        if self.draining:
            return
        logger.error("the browser died; relaunching and restoring every session")
        self.metrics.restarts += 1
        self._expire_prepared(everything=True)
        self.browser_relaunched.clear()
        for session in list(self.sessions.values()):
            session.browser_lost()
        self.spawn(self._relaunch())

    async def _relaunch(self) -> None:
        try:
            await self.host.relaunch()
        finally:
            self.browser_relaunched.set()

    async def _metrics_loop(self) -> None:
        while not self.killed.is_set():
            await asyncio.sleep(self.settings.metrics_interval_seconds)
            try:
                await self._publish_metrics()
            except Exception as exc:
                logger.warning("metrics publish failed", extra={"error": repr(exc)})

    async def _publish_metrics(self) -> None:
        from aws_lambda_powertools.metrics import MetricUnit

        from shared.observability import metrics

        # Nothing before the outbox depth needs Redis: during an outage autoscaling and the alarms must still see
        # the sessions this worker drives and the events it holds in its spool.
        # Flushed alone, with only the service dimension, so autoscaling can average it across tasks.
        metrics.add_metric(name="ActiveSessions", unit=MetricUnit.Count, value=len(self.sessions))
        metrics.flush_metrics()
        pss = await asyncio.to_thread(browser_pss_bytes)
        metrics.add_dimension(name="worker", value=self.worker_id)
        for status, count in self.status_counts().items():
            metrics.add_metric(name=f"Sessions_{status}", unit=MetricUnit.Count, value=count)
        metrics.add_metric(name="BrowserPssBytes", unit=MetricUnit.Bytes, value=pss)
        metrics.add_metric(name="Restarts", unit=MetricUnit.Count, value=self.metrics.restarts)
        metrics.add_metric(name="SpooledEvents", unit=MetricUnit.Count, value=len(self.spool))
        depth = await self._outbox_depth()
        if depth is not None:
            metrics.add_metric(name="OutboxDepth", unit=MetricUnit.Count, value=depth)
        metrics.flush_metrics()

    async def _outbox_depth(self) -> int | None:
        """The outbox stream's length, or None while Redis does not answer within a second."""
        try:
            return await asyncio.wait_for(self.poster.depth(), timeout=1.0)
        except (RedisError, OSError, TimeoutError) as exc:
            logger.warning("outbox depth unknown: Redis did not answer", extra={"error": repr(exc)})
            return None

    async def _healthz(self) -> tuple[int, str]:
        # Liveness only (process and browser), never Redis: see session_workers/health.py.
        return await liveness(self._host)

    async def _readyz(self) -> tuple[int, str]:
        if not self.started or self.draining:
            return 503, "draining\n" if self.draining else "starting\n"
        if time.monotonic() - self.heartbeat_ok_at > 2 * self.ttl_s:
            return 503, "heartbeat failing\n"
        if self._host is not None and not self._host.connected:
            return 503, "browser down\n"
        return 200, f"ready: {len(self.sessions)}/{self.capacity} sessions\n"

    async def _metrics_text(self) -> tuple[int, str]:
        self.metrics.statuses = self.status_counts()
        depth = await self.poster.depth()
        pss = await asyncio.to_thread(browser_pss_bytes)
        return 200, self.metrics.prometheus(
            worker_id=self.worker_id, outbox_depth=depth, pss_bytes=pss, capacity=self.capacity
        )
