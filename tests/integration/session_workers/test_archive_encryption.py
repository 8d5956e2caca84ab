"""Auth archives are credentials: sealed with a per-archive KMS data key (LocalStack's KMS), bound to the session.

Checks: nothing of the archive readable in Redis or S3; an archive moved to another session id does not open; a
missing, disabled or unconfigured key fails with a status and a reason; rotation re-seals lazily and old
archives still open; archives from before encryption still open and are re-sealed on the next save."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from session_workers.archive_crypto import ArchiveUnreadable
from session_workers.auth import AuthStore
from session_workers.ownership import Lease, Ownership
from shared import aws
from shared import redis_keys as keys
from shared.settings import get_settings
from tests.integration.session_workers.conftest import new_session
from tests.integration.session_workers.kms import create_key, kms_key

__all__ = ["kms_key"]

PAGE_SECRET = b'{"WASecretBundle":"device-secret-0123456789","records":["hello there, invoice 42"]}'
ARCHIVE = PAGE_SECRET * 200


@pytest.fixture
async def binary(redis: Redis) -> AsyncIterator[Redis]:
    client = Redis.from_url(get_settings().redis_url)
    yield client
    await client.aclose()


async def leased(redis: Redis, session_id: str) -> Lease:
    await new_session(redis, session_id)
    lease = await Ownership(redis, "w-seal", ttl_ms=60_000).claim(session_id)
    assert lease is not None
    return lease


def store_with(binary: Redis, env: pytest.MonkeyPatch, key_id: str | None) -> AuthStore:
    if key_id is None:
        env.delenv("WAGW_AUTH_KMS_KEY_ID", raising=False)
    else:
        env.setenv("WAGW_AUTH_KMS_KEY_ID", key_id)
    get_settings.cache_clear()
    return AuthStore(binary, "w-seal")


async def test_archives_are_sealed_in_redis_and_s3_and_open_only_for_their_session(
    redis: Redis, binary: Redis, worker_env: pytest.MonkeyPatch, kms_key: str
) -> None:
    bucket = f"wagw-auth-{uuid.uuid4().hex[:10]}"
    worker_env.setenv("WAGW_AUTH_BUCKET", bucket)
    aws.s3().create_bucket(Bucket=bucket)
    store = store_with(binary, worker_env, kms_key)
    lease = await leased(redis, "sess_seal")
    # When an archive is saved inline, then a large one to S3
    await store.save(lease, "context", ARCHIVE)
    record = await binary.hgetall(keys.session_auth("sess_seal"))
    # Then Redis holds ciphertext, the KMS-encrypted data key and the key's ARN, nothing readable
    assert record[b"enc"] == b"kms-aes256gcm/1" and record[b"key_arn"].decode() == kms_key
    assert b"device-secret" not in b"".join(record.values()) and b"invoice" not in record[b"data"]
    loaded = await store.load("sess_seal")
    assert loaded is not None and loaded.raw == ARCHIVE and not loaded.stale
    worker_env.setenv("WAGW_AUTH_INLINE_MAX_BYTES", "10")
    store = store_with(binary, worker_env, kms_key)
    large = ARCHIVE + os.urandom(3000)
    await store.save(lease, "context", large)
    pointer = (await binary.hget(keys.session_auth("sess_seal"), "s3_key")).decode()
    body = aws.s3().get_object(Bucket=bucket, Key=pointer)["Body"].read()
    assert b"device-secret" not in body and b"invoice" not in body
    assert (await store.load("sess_seal")).raw == large  # type: ignore[union-attr]

    # When the record (inline ciphertext and sealed data key) is copied into another session
    worker_env.setenv("WAGW_AUTH_INLINE_MAX_BYTES", str(512 * 1024))
    store = store_with(binary, worker_env, kms_key)
    await store.save(lease, "context", ARCHIVE)
    await binary.hset(keys.session_auth("sess_other"), mapping=await binary.hgetall(keys.session_auth("sess_seal")))
    # Then it does not open there: KMS refuses the data key under the other session's encryption context
    with pytest.raises(ArchiveUnreadable) as moved:
        await store.load("sess_other")
    assert moved.value.status == "wrong_session" and "another session" in moved.value.reason


async def test_a_missing_disabled_or_unconfigured_key_fails_with_a_status_and_a_reason(
    redis: Redis, binary: Redis, worker_env: pytest.MonkeyPatch, kms_key: str
) -> None:
    store = store_with(binary, worker_env, kms_key)
    await store.save(await leased(redis, "sess_keyless"), "profile", ARCHIVE)
    # A worker without a key cannot open a sealed archive, and says why
    with pytest.raises(ArchiveUnreadable) as unconfigured:
        await store_with(binary, worker_env, None).load("sess_keyless")
    assert unconfigured.value.status == "no_key_configured" and "WAGW_AUTH_KMS_KEY_ID" in unconfigured.value.reason
    # A disabled key: the key service answers, the archive cannot be opened until the key is enabled again
    aws.client("kms").disable_key(KeyId=kms_key)
    try:
        with pytest.raises(ArchiveUnreadable) as disabled:
            await store_with(binary, worker_env, kms_key).load("sess_keyless")
        assert disabled.value.status == "key_unavailable" and disabled.value.transient
        assert "disabled" in disabled.value.reason
    finally:
        aws.client("kms").enable_key(KeyId=kms_key)
    # A data key that was altered does not open either
    await binary.hset(keys.session_auth("sess_keyless"), "edk", os.urandom(120))
    with pytest.raises(ArchiveUnreadable) as altered:
        await store_with(binary, worker_env, kms_key).load("sess_keyless")
    assert altered.value.status in {"wrong_session", "key_unavailable"}


async def test_rotation_reseals_lazily_and_old_archives_still_open(
    redis: Redis, binary: Redis, worker_env: pytest.MonkeyPatch, kms_key: str
) -> None:
    lease = await leased(redis, "sess_rotate")
    # Given an archive saved before encryption was configured
    await store_with(binary, worker_env, None).save(lease, "context", ARCHIVE)
    # Then with a key it still opens, marked stale so the next save seals it
    store = store_with(binary, worker_env, kms_key)
    plain = await store.load("sess_rotate")
    assert plain is not None and plain.raw == ARCHIVE and plain.stale and plain.compare_sha != plain.sha256
    await store.save(lease, "context", ARCHIVE)
    # When KMS rotates the key material, the sealed archive still opens and is not stale
    aws.client("kms").rotate_key_on_demand(KeyId=kms_key)
    sealed = await store.load("sess_rotate")
    assert sealed is not None and sealed.raw == ARCHIVE and not sealed.stale
    # When the deployment moves to a new key, the archive under the old key still opens, marked stale
    new_key = create_key("wagw test: the next key")
    try:
        store = store_with(binary, worker_env, new_key)
        old = await store.load("sess_rotate")
        assert old is not None and old.raw == ARCHIVE and old.stale
        # And the next save re-seals it under the new key
        await store.save(lease, "context", ARCHIVE)
        assert (await binary.hget(keys.session_auth("sess_rotate"), "key_arn")).decode() == new_key
        assert not (await store.load("sess_rotate")).stale  # type: ignore[union-attr]
    finally:
        aws.client("kms").schedule_key_deletion(KeyId=new_key, PendingWindowInDays=7)


async def test_outside_dev_an_archive_is_never_stored_unsealed(
    redis: Redis, binary: Redis, worker_env: pytest.MonkeyPatch
) -> None:
    lease = await leased(redis, "sess_prodplain")
    worker_env.setenv("WAGW_ENV", "staging")
    worker_env.setenv("WAGW_ADMIN_API_KEY", "staging-admin-key-for-tests")
    worker_env.setenv("WAGW_PRODUCER_KEYS", '{"test": "whsec_c3RhZ2luZy10ZXN0LWtleS0xMjM0NTY3ODkwMTI="}')
    store = store_with(binary, worker_env, None)
    with pytest.raises(RuntimeError, match="WAGW_AUTH_KMS_KEY_ID"):
        await store.save(lease, "context", ARCHIVE)
    assert not await binary.exists(keys.session_auth("sess_prodplain"))
