"""Leases, fencing, claiming and orphans on a real Redis, with sessions that drive nothing (no browser)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from session_workers.ownership import FencedOff, Lease, Ownership
from session_workers.worker import Worker
from shared import redis_keys as keys
from shared.settings import get_settings
from tests.integration.session_workers.conftest import eventually, new_session
from tests.integration.session_workers.fakes import DrivingLog, fake_factory


def fake_worker(log: DrivingLog, capacity: int | None = None, worker_id: str | None = None) -> Worker:
    base = get_settings()
    overrides: dict[str, object] = {}
    if capacity is not None:
        overrides["worker_capacity"] = capacity
    if worker_id is not None:
        overrides["worker_id"] = worker_id
    return Worker(base.model_copy(update=overrides), session_factory=fake_factory(log), health_port=None)


async def test_a_stale_owner_is_fenced_off_after_another_claims(redis: Redis, worker_env: pytest.MonkeyPatch) -> None:
    # Given worker A claimed a session and its lease lapsed
    sid = await new_session(redis, "sess_fence")
    a = Ownership(redis, "worker-a", ttl_ms=200)
    b = Ownership(redis, "worker-b", ttl_ms=5000)
    lease_a = await a.claim(sid)
    assert lease_a is not None and await b.claim(sid) is None
    await asyncio.sleep(0.3)
    # When B claims it
    await redis.sadd(keys.unowned_sessions(), sid)
    lease_b = await b.claim(sid)
    assert lease_b is not None and lease_b.fence == lease_a.fence + 1
    # Then every write of A is refused, and B's go through
    with pytest.raises(FencedOff):
        await a.emit(lease_a, '{"x": 1}')
    assert await a.renew([lease_a]) == [False]
    assert await b.emit(lease_b, '{"x": 2}')
    assert await redis.xlen(keys.outbox("worker-a")) == 0
    assert await redis.xlen(keys.outbox("worker-b")) == 1
    assert await redis.hget(keys.session(sid), "owner") == "worker-b"
    assert sid in await redis.smembers(keys.worker_sessions("worker-b"))
    assert sid not in await redis.smembers(keys.worker_sessions("worker-a"))


async def test_deleted_sessions_are_not_claimed(redis: Redis, worker_env: pytest.MonkeyPatch) -> None:
    sid = await new_session(redis, "sess_deleted")
    await redis.hset(keys.session(sid), "deleted_at_ms", 1)
    assert await Ownership(redis, "w", 1000).claim(sid) is None
    assert not await redis.sismember(keys.unowned_sessions(), sid)


async def test_idle_workers_share_sessions_least_loaded_first(redis: Redis, worker_env: pytest.MonkeyPatch) -> None:
    log = DrivingLog()
    # Given one worker already owns 4 sessions
    busy = fake_worker(log, capacity=10, worker_id="busy")
    await busy.start()
    for i in range(4):
        await new_session(redis, f"sess_pre_{i}")
    await eventually(lambda: len(busy.sessions) == 4, what="busy worker owns 4")
    # When an idle worker joins and 6 more sessions arrive
    idle = fake_worker(log, capacity=10, worker_id="idle")
    await idle.start()
    await asyncio.sleep(0.4)
    for i in range(6):
        await new_session(redis, f"sess_new_{i}")
    await eventually(lambda: len(busy.sessions) + len(idle.sessions) == 10, what="all 10 owned")
    # Then the idle worker took most of the new ones (5/5 is the fair share), within its capacity
    assert len(idle.sessions) >= 4
    assert abs(len(idle.sessions) - len(busy.sessions)) <= 2
    assert not log.overlaps()
    for worker in (busy, idle):
        await worker.stop()


async def test_capacity_is_respected(redis: Redis, worker_env: pytest.MonkeyPatch) -> None:
    log = DrivingLog()
    worker = fake_worker(log, capacity=3)
    await worker.start()
    for i in range(5):
        await new_session(redis, f"sess_cap_{i}")
    await eventually(lambda: len(worker.sessions) == 3, what="3 owned")
    await asyncio.sleep(0.5)
    assert len(worker.sessions) == 3
    assert await redis.scard(keys.unowned_sessions()) == 2
    await worker.stop()
    # And a graceful stop hands every session back at once
    assert await redis.scard(keys.unowned_sessions()) == 5
    assert not await redis.exists(*[keys.session_lease(f"sess_cap_{i}") for i in range(5)])


async def test_a_dead_workers_sessions_are_taken_over(redis: Redis, worker_env: pytest.MonkeyPatch) -> None:
    log = DrivingLog()
    a = fake_worker(log, worker_id="doomed")
    await a.start()
    for i in range(3):
        await new_session(redis, f"sess_orphan_{i}")
    await eventually(lambda: len(a.sessions) == 3, what="A owns 3")
    # When A dies without a word and B is running
    a.kill()
    await a.close_after_kill()
    b = fake_worker(log, worker_id="heir")
    await b.start()
    # Then B owns all three once A's leases lapse, and nobody drove a session twice at once
    await eventually(lambda: len(b.sessions) == 3, within=10, what="B owns 3")
    for i in range(3):
        assert await redis.hget(keys.session(f"sess_orphan_{i}"), "owner") == "heir"
    assert not log.overlaps()
    await b.stop()


def _stopped_during_claim(worker: Worker, stop: Callable[[], None]) -> None:
    """The worker is stopped while its claim is in flight, and the cancel is swallowed.

    On Python 3.11 asyncio.wait_for (which redis-py wraps around socket writes) can return a result and drop a
    cancel that arrives in the same loop iteration; the claim loop then carries on as if nothing happened.
    """
    real_claim = worker.ownership.claim

    async def claim_then_stop(session_id: str) -> Lease | None:
        lease = await real_claim(session_id)
        stop()
        task = asyncio.current_task()
        while task is not None and task.cancelling():
            task.uncancel()
        return lease

    worker.ownership.claim = claim_then_stop  # type: ignore[method-assign]


async def test_a_worker_killed_mid_claim_never_drives_what_it_claimed(
    redis: Redis, worker_env: pytest.MonkeyPatch
) -> None:
    # Given a worker whose kill lands while a claim is in flight and whose cancel is lost
    log = DrivingLog()
    worker = fake_worker(log, worker_id="mid-claim")
    await worker.start()
    _stopped_during_claim(worker, worker.kill)
    # When a session arrives and the worker claims it
    sid = await new_session(redis, "sess_mid_claim")
    await eventually(lambda: redis.exists(keys.session_lease(sid)), what="the lease is taken")
    await asyncio.sleep(0.3)
    # Then the dead worker never started driving it, and stays silent (no heartbeat after the kill)
    assert log.intervals == []
    beat = await redis.zscore(keys.workers(), "mid-claim")
    await asyncio.sleep(0.5)
    assert await redis.zscore(keys.workers(), "mid-claim") == beat
    assert all(task.done() for task in worker._loops)
    await worker.close_after_kill()


async def test_a_worker_stopping_mid_claim_hands_the_session_back(redis: Redis, worker_env: pytest.MonkeyPatch) -> None:
    # Given a worker that starts draining while a claim is in flight
    log = DrivingLog()
    worker = fake_worker(log, worker_id="draining")
    await worker.start()
    _stopped_during_claim(worker, lambda: setattr(worker, "draining", True))
    # When it claims a session
    sid = await new_session(redis, "sess_handed_back")
    await eventually(lambda: redis.hget(keys.session(sid), "fence"), what="the session was claimed")
    # Then it does not drive it and gives it straight back to the pool
    await eventually(lambda: redis.sismember(keys.unowned_sessions(), sid), what="the session is unowned again")
    assert log.intervals == []
    assert not await redis.exists(keys.session_lease(sid))
    worker.kill()
    await worker.close_after_kill()


# No shrinking: each example runs for seconds, and a shrink would take many minutes of the suite.
@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(
    actions=st.lists(
        st.tuples(st.sampled_from(["kill", "pause", "wait"]), st.integers(0, 2), st.floats(0.05, 0.6)),
        min_size=3,
        max_size=7,
    ),
    seed=st.integers(0, 10**6),
)
async def test_property_no_two_workers_ever_drive_the_same_session(
    redis: Redis, worker_env: pytest.MonkeyPatch, actions: list[tuple[str, int, float]], seed: int
) -> None:
    """Several workers, random kills and stalls (a heartbeat that does not get through for a while)."""
    await redis.flushdb()
    rng = random.Random(seed)
    log = DrivingLog()
    live: list[Worker] = []
    dead: list[Worker] = []
    try:
        await _exercise(redis, rng, log, live, dead, actions)
    finally:  # a failing example must not leave workers running into the next one
        for worker in live:
            worker.kill()
        for worker in live + dead:
            await worker.close_after_kill()


async def _exercise(
    redis: Redis,
    rng: random.Random,
    log: DrivingLog,
    live: list[Worker],
    dead: list[Worker],
    actions: list[tuple[str, int, float]],
) -> None:
    for _ in range(3):
        worker = fake_worker(log, capacity=4)
        await worker.start()
        live.append(worker)
    for i in range(8):
        await new_session(redis, f"sess_p{i}")
    await asyncio.sleep(0.3)
    for kind, index, duration in actions:
        target = live[index % len(live)]
        if kind == "kill":
            target.kill()
            dead.append(target)
            live.remove(target)
            replacement = fake_worker(log, capacity=4)
            await replacement.start()
            live.append(replacement)
        elif kind == "pause":
            real_renew = target.ownership.renew
            stall = duration * 4  # long enough, sometimes, for the lease to lapse

            async def stalled(leases, real_renew=real_renew, stall=stall):  # type: ignore[no-untyped-def]
                await asyncio.sleep(stall)
                return await real_renew(leases)

            target.ownership.renew = stalled  # type: ignore[method-assign]
            asyncio.get_running_loop().call_later(stall + 0.1, setattr, target.ownership, "renew", real_renew)
        await asyncio.sleep(duration + rng.uniform(0, 0.2))
        assert not log.overlaps(), log.overlaps()
    # Eventually every session is driven again by exactly one live worker
    await eventually(
        lambda: sum(len(w.sessions) for w in live) == 8, within=15, what="all sessions owned by live workers"
    )
    assert not log.overlaps(), log.overlaps()
