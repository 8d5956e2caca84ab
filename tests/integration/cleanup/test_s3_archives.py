"""Auth archives kept in S3 (LocalStack): objects of sessions that no longer exist are deleted."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from redis.asyncio import Redis

from functions.cleanup.logic import run_cleanup
from shared import aws
from shared import redis_keys as keys
from shared.events import SessionStatus
from shared.settings import get_settings
from shared.store.records import now_ms
from tests.conftest import refresh_settings
from tests.integration.cleanup.helpers import DAY, Ingest, make_session
from wagw_local import bootstrap


@pytest.fixture
def bucket(aws_endpoint: str, env: pytest.MonkeyPatch) -> Iterator[str]:
    env.setenv("WAGW_AUTH_BUCKET", f"wagw-auth-{uuid.uuid4().hex[:10]}")
    env.setenv("WAGW_CLEANUP_S3_ENABLED", "true")
    env.setenv("WAGW_CLEANUP_S3_GRACE_SECONDS", "0")
    refresh_settings()
    name = bootstrap.create_bucket()
    try:
        yield name
    finally:
        s3 = aws.s3()
        for obj in s3.list_objects_v2(Bucket=name).get("Contents", []):
            s3.delete_object(Bucket=name, Key=obj["Key"])
        s3.delete_bucket(Bucket=name)


async def test_s3_archives_of_missing_sessions_are_deleted(redis: Redis, bucket: str) -> None:
    # Given archives in S3 for a live session, a soft-deleted one (restorable), a missing one, an indexed
    # missing one whose Redis record points at its object, and an expired tombstone
    now = now_ms()
    await make_session(redis, "ses_live", SessionStatus.READY, at=now)
    await make_session(redis, "ses_tomb", SessionStatus.STOPPED, at=now - DAY, deleted_at=now - DAY)
    await make_session(redis, "ses_old", SessionStatus.STOPPED, at=now - 8 * DAY, deleted_at=now - 8 * DAY)
    await redis.hset(keys.session_auth("ses_old"), mapping={"s3_key": "auth/ses_old.tar.zst"})
    await redis.hset(keys.session_auth("ses_idx"), mapping={"s3_key": "auth/ses_idx/profile.tar.zst"})
    await redis.sadd(keys.auth_index(), "ses_old", "ses_idx")
    s3 = aws.s3()
    names = [
        "auth/ses_live.tar.zst",
        "auth/ses_live/extra.bin",
        "auth/ses_tomb.tar.zst",
        "auth/ses_gone.tar.zst",
        "auth/ses_gone/part-1",
        "auth/ses_idx/profile.tar.zst",
        "auth/ses_old.tar.zst",
    ]
    for name in names:
        s3.put_object(Bucket=bucket, Key=name, Body=b"archive")

    # When cleanup runs a little later (the grace period for fresh uploads is 0 here)
    result = await run_cleanup(redis, get_settings(), post=Ingest().post, now=now_ms() + 2000)

    # Then only the live and the restorable sessions' archives are left, in S3 and in Redis
    left = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
    assert left == ["auth/ses_live.tar.zst", "auth/ses_live/extra.bin", "auth/ses_tomb.tar.zst"]
    assert not await redis.exists(keys.session_auth("ses_idx"), keys.session_auth("ses_old"))
    assert await redis.scard(keys.auth_index()) == 0
    assert result.counts["auth_s3_objects_deleted"] == 4 and result.errors == 0


async def test_fresh_uploads_are_left_alone_during_the_grace_period(
    redis: Redis, bucket: str, env: pytest.MonkeyPatch
) -> None:
    # Given an archive just uploaded for a session cleanup cannot see (yet), and a one-hour grace period
    env.setenv("WAGW_CLEANUP_S3_GRACE_SECONDS", "3600")
    refresh_settings()
    aws.s3().put_object(Bucket=bucket, Key="auth/ses_new.tar.zst", Body=b"archive")
    # When cleanup runs
    result = await run_cleanup(redis, get_settings(), post=Ingest().post)
    # Then the object stays
    assert [o["Key"] for o in aws.s3().list_objects_v2(Bucket=bucket)["Contents"]] == ["auth/ses_new.tar.zst"]
    assert result.s3_objects_checked == 1 and result.counts["auth_s3_objects_deleted"] == 0
