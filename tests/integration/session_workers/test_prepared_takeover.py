"""A `context` takeover prepares while the silent owner's leases run out: the new worker restores the sessions'
storage into fresh contexts before it may drive them, loads no page of the site before it holds the lease, and a
claim uses the prepared context only for the very archive it loads."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis

from session_workers.browser import SharedBrowserHost
from session_workers.simulator import SimulatorServer
from session_workers.simulator.ingest_stub import IngestStub
from session_workers.worker import Worker
from shared import redis_keys as keys
from tests.integration.session_workers.conftest import new_session, scan_latest_qr, sim_state, start_context_worker

pytestmark = pytest.mark.browser


async def test_a_takeover_restores_storage_while_the_leases_run_out_and_loads_the_site_only_after_its_claim(
    redis: Redis,
    worker_env: pytest.MonkeyPatch,
    context_host: SharedBrowserHost,
    workers: list[Worker],
    sim: SimulatorServer,
    stub: IngestStub,
) -> None:
    # The deployed lease settings (the tests' fast ones leave almost no time between silence and lapse)
    deployed_leases = {
        "WAGW_LEASE_TTL_MS": "6000",
        "WAGW_HEARTBEAT_INTERVAL_MS": "1500",
        "WAGW_LEASE_SAFETY_MARGIN_MS": "1500",
    }
    a = await start_context_worker(worker_env, context_host, workers, WAGW_WORKER_ID="prep-a", **deployed_leases)
    sid = await new_session(redis, "sess_prepared")
    await scan_latest_qr(stub, sim, sid, "15550000711")
    await stub.wait_for(lambda: "ready" in stub.statuses(sid), 30, "ready on A")
    await stub.wait_for(lambda: a.metrics.auth_saves >= 1, 30, "saved on ready")
    # Given its owner dies (its lease runs out within a TTL; its pages are gone, as the OS would close them)
    a.kill()
    await a.close_after_kill()
    killed_at = time.monotonic()
    loads_before = len((await sim_state(sim))["clients"])
    b = await start_context_worker(worker_env, context_host, workers, WAGW_WORKER_ID="prep-b", **deployed_leases)
    # When B sees A silent, it restores the session's storage into a fresh context
    deadline = time.monotonic() + 15
    lease_left_ms = -2
    while sid not in b.prepared and time.monotonic() < deadline:
        lease_left_ms = await redis.pttl(keys.session_lease(sid))
        await asyncio.sleep(0.01)
    assert sid in b.prepared, "nothing prepared while the lease ran out"
    # Then that happened while A's lease still held, and B loaded no page of the site (WhatsApp saw no new client)
    assert lease_left_ms > 0, "prepared only after the lease lapsed"
    assert sid not in b.sessions
    assert len((await sim_state(sim))["clients"]) == loads_before
    # And once the lease lapsed B claims it, uses the prepared context, and the session is ready without a QR
    qrs = len(stub.select("session.qr", sid))
    await stub.wait_for(lambda: stub.statuses(sid).count("ready") >= 2, 30, "ready on B")
    assert b.metrics.prepared_used == 1 and b.metrics.prepared_restores == 1
    assert len(stub.select("session.qr", sid)) == qrs
    assert time.monotonic() - killed_at < 20
    assert not b.prepared
