"""A message the dying owner's page stored (so WhatsApp will not send it again) but never wrote to the outbox is
reported by the next owner, from the restored page's own store, exactly once."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

from session_workers.session import BrowserSession
from session_workers.simulator import SimulatorServer
from session_workers.simulator.ingest_stub import IngestStub
from session_workers.worker import Worker
from shared import redis_keys as keys
from shared.settings import get_settings
from tests.integration.session_workers.conftest import control, eventually, new_session, scan_latest_qr

pytestmark = pytest.mark.browser
CONTACT = "15557770031"


def named(worker_id: str) -> Worker:
    return Worker(get_settings().model_copy(update={"worker_id": worker_id}), health_port=None)


async def test_a_stored_but_unreported_message_is_reported_once_by_the_next_owner(
    redis: Redis, worker_env: pytest.MonkeyPatch, sim: SimulatorServer, stub: IngestStub, workers: list[Worker]
) -> None:
    worker_env.setenv("WAGW_AUTH_STRATEGY", "profile")
    worker_env.setenv("WAGW_LEASE_TTL_MS", "4000")  # longer than the simulator counts a dead page as connected
    get_settings.cache_clear()
    phone = "15550000531"
    a, b = named("rc-a"), named("rc-b")
    workers.extend([a, b])
    await a.start()
    sid = await new_session(redis, "sess_rc")
    await scan_latest_qr(stub, sim, sid, phone)
    await stub.wait_for(lambda: "ready" in stub.statuses(sid), 30, "ready on A")
    # Given one message A reported as usual
    await control(sim, "inbound", phone=phone, sender=f"{CONTACT}@c.us", body="reported by A", id="RC0001")
    await stub.wait_for(lambda: stub.select("message.received", sid), 20, "the first message")
    # ... and one A's page stored and acknowledged to WhatsApp, but A died before writing it to its outbox
    # (forced: A's session drops it, as a SIGKILL between the page and the outbox would)
    session = a.sessions[sid]
    assert isinstance(session, BrowserSession)
    dropped: list[dict[str, Any]] = []

    async def die_before_the_outbox(data: dict[str, Any]) -> None:
        dropped.append(data)

    session._on_message = die_before_the_outbox  # type: ignore[method-assign]
    await control(sim, "inbound", phone=phone, sender=f"{CONTACT}@c.us", body="lost with A", id="RC0002")
    await eventually(lambda: dropped, what="A's page took the message")
    await eventually(lambda: _acknowledged(sim), what="the page acknowledged it to WhatsApp")
    assert await session.backup(force=True)
    # When A dies and B takes the session over from the archive
    await b.start()
    a.kill()
    await a.close_after_kill()
    await stub.wait_for(lambda: stub.statuses(sid).count("ready") >= 2, 30, "ready on B")
    # Then the message reaches the tenant, once; the one A reported is not delivered twice (same event id, and
    # ingest's dedupe drops the repeat)
    lost = await stub.wait_for(
        lambda: [e for e in stub.select("message.received", sid) if e["data"]["body"] == "lost with A"],
        20,
        "the stored message from B",
    )
    assert len(lost) == 1
    first = next(e for e in stub.select("message.received", sid) if e["data"]["body"] == "reported by A")
    assert stub.seen[first["id"]] == 2  # B reported it again from its store, under the same id
    assert len([e for e in stub.select("message.received", sid) if e["data"]["body"] == "reported by A"]) == 1
    assert await redis.hget(keys.session(sid), "owner") == "rc-b"


async def _acknowledged(sim: SimulatorServer) -> bool:
    """Every event the server queued for a page has been acknowledged (so WhatsApp will not send it again)."""
    return all(not client.events for client in sim.state.clients.values() if client.device_id)
