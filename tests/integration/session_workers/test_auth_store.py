"""Auth archives: inline zstd in Redis, large ones in S3 (LocalStack) behind a pointer; all writes fenced."""

from __future__ import annotations

import os
import uuid

import pytest
from redis.asyncio import Redis

from session_workers.auth import AuthStore
from session_workers.ownership import FencedOff, Ownership
from shared import aws
from shared import redis_keys as keys
from shared.settings import get_settings
from tests.integration.session_workers.conftest import new_session


def objects(bucket: str) -> list[str]:
    return [o["Key"] for o in aws.s3().list_objects_v2(Bucket=bucket).get("Contents", [])]


async def test_small_archives_inline_large_ones_in_s3_and_removal(
    redis: Redis, worker_env: pytest.MonkeyPatch, aws_endpoint: str
) -> None:
    bucket = f"wagw-auth-{uuid.uuid4().hex[:10]}"
    worker_env.setenv("WAGW_AUTH_BUCKET", bucket)
    worker_env.setenv("WAGW_AUTH_INLINE_MAX_BYTES", "1000")
    get_settings.cache_clear()
    aws.reset_clients()
    aws.s3().create_bucket(Bucket=bucket)
    binary = Redis.from_url(get_settings().redis_url)
    try:
        sid = await new_session(redis, "sess_auth")
        ownership = Ownership(redis, "w-auth", ttl_ms=60_000)
        lease = await ownership.claim(sid)
        assert lease is not None
        store = AuthStore(binary, "w-auth")
        # A small archive stays in Redis, compressed
        small = b'{"cookies":[],"origins":[]}' * 10
        await store.save(lease, "context", small)
        assert await binary.hexists(keys.session_auth(sid), "data")
        assert (await store.load(sid)).raw == small  # type: ignore[union-attr]
        # A large one goes to S3, with a pointer in Redis
        large = os.urandom(5000)
        await store.save(lease, "profile", large)
        pointer = (await binary.hget(keys.session_auth(sid), "s3_key")).decode()
        assert pointer.startswith(f"auth/{sid}/") and objects(bucket) == [pointer]
        loaded = await store.load(sid)
        assert loaded is not None and loaded.raw == large and loaded.in_s3 and loaded.strategy == "profile"
        # Replacing it deletes the old object
        await store.save(lease, "profile", os.urandom(5000))
        assert len(objects(bucket)) == 1 and objects(bucket) != [pointer]
        # A worker that lost the session can neither save nor delete, and leaves no object behind
        await redis.delete(keys.session_lease(sid))
        await redis.sadd(keys.unowned_sessions(), sid)
        other = Ownership(redis, "w-other", ttl_ms=60_000)
        assert await other.claim(sid) is not None
        with pytest.raises(FencedOff):
            await store.save(lease, "profile", os.urandom(5000))
        with pytest.raises(FencedOff):
            await store.delete(lease)
        assert len(objects(bucket)) == 1
        # The owner's delete (logout) removes the archive, its index entry and the object
        new_lease = await Ownership(redis, "w-other", ttl_ms=60_000).claim(sid)
        assert new_lease is None  # already owned by w-other: reuse its lease through a fresh claim below
        await redis.delete(keys.session_lease(sid))
        await redis.sadd(keys.unowned_sessions(), sid)
        owner_lease = await other.claim(sid)
        assert owner_lease is not None
        await AuthStore(binary, "w-other").delete(owner_lease)
        assert not await binary.exists(keys.session_auth(sid))
        assert not await binary.sismember(keys.auth_index(), sid)
        assert objects(bucket) == []
    finally:
        await binary.aclose()
        for key in objects(bucket):
            aws.s3().delete_object(Bucket=bucket, Key=key)
        aws.s3().delete_bucket(Bucket=bucket)
