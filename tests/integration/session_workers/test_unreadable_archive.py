"""A session whose saved login cannot be opened is stopped with the reason, never started fresh (a fresh page's
first save would overwrite the login)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from session_workers.auth import AuthStore
from session_workers.browser import SharedBrowserHost
from session_workers.ownership import Ownership
from session_workers.simulator.ingest_stub import IngestStub
from session_workers.worker import Worker
from shared import redis_keys as keys
from shared.settings import get_settings
from tests.integration.session_workers.conftest import eventually, new_session, start_context_worker
from tests.integration.session_workers.kms import kms_key

__all__ = ["kms_key"]
pytestmark = pytest.mark.browser


@pytest.fixture
async def binary(redis: Redis) -> AsyncIterator[Redis]:
    client = Redis.from_url(get_settings().redis_url)
    yield client
    await client.aclose()


async def test_an_archive_moved_from_another_session_fails_the_session_with_the_reason(
    redis: Redis,
    binary: Redis,
    worker_env: pytest.MonkeyPatch,
    kms_key: str,
    context_host: SharedBrowserHost,
    workers: list[Worker],
    stub: IngestStub,
) -> None:
    # Given a sealed archive of one session copied into another session's record
    worker_env.setenv("WAGW_AUTH_KMS_KEY_ID", kms_key)
    get_settings.cache_clear()
    await new_session(redis, "sess_owner")
    lease = await Ownership(redis, "w-seal", ttl_ms=60_000).claim("sess_owner")
    assert lease is not None
    await AuthStore(binary, "w-seal").save(lease, "context", b'{"archive": "of sess_owner"}' * 50)
    await binary.hset(keys.session_auth("sess_moved"), mapping=await binary.hgetall(keys.session_auth("sess_owner")))
    # When a worker claims the other session
    worker = await start_context_worker(worker_env, context_host, workers, WAGW_AUTH_KMS_KEY_ID=kms_key)
    await new_session(redis, "sess_moved")
    # Then it is failed with the archive's status and reason, parked, and no page asked for a new QR
    await stub.wait_for(lambda: "failed" in stub.statuses("sess_moved"), 60, "failed")
    reason = stub.select("session.status", "sess_moved")[-1]["data"]["reason"]
    assert reason.startswith("auth_archive_wrong_session: ")
    assert not stub.select("session.qr", "sess_moved")
    await eventually(lambda: "sess_moved" not in worker.sessions, what="session parked")
    assert not await redis.sismember(keys.unowned_sessions(), "sess_moved")
    # And the record is still there, untouched, for someone to sort out
    assert await binary.hgetall(keys.session_auth("sess_moved")) == await binary.hgetall(
        keys.session_auth("sess_owner")
    )


async def test_an_archive_whose_contents_do_not_match_its_digest_fails_the_session_instead_of_a_new_qr(
    redis: Redis,
    binary: Redis,
    worker_env: pytest.MonkeyPatch,
    context_host: SharedBrowserHost,
    workers: list[Worker],
    stub: IngestStub,
) -> None:
    # Given a saved archive whose recorded SHA-256 no longer matches its contents
    await new_session(redis, "sess_corrupt")
    lease = await Ownership(redis, "w-corrupt", ttl_ms=60_000).claim("sess_corrupt")
    assert lease is not None
    await AuthStore(binary, "w-corrupt").save(lease, "context", b'{"archive": "of sess_corrupt"}' * 50)
    await binary.hset(keys.session_auth("sess_corrupt"), "sha256", "0" * 64)
    await Ownership(redis, "w-corrupt", ttl_ms=60_000).release(lease, requeue=True)
    # When a worker claims the session
    worker = await start_context_worker(worker_env, context_host, workers)
    # Then it is failed with the reason, and no page asked for a new QR
    await stub.wait_for(lambda: "failed" in stub.statuses("sess_corrupt"), 60, "failed")
    reason = stub.select("session.status", "sess_corrupt")[-1]["data"]["reason"]
    assert reason.startswith("auth_archive_corrupt: ")
    assert not stub.select("session.qr", "sess_corrupt")
    await eventually(lambda: "sess_corrupt" not in worker.sessions, what="session parked")
