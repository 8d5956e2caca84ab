"""The media store against real Redis and LocalStack: the bytes go in with the digest their event announces, and
S3 holds them to it."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError
from redis.asyncio import Redis

from shared import aws
from shared import redis_keys as keys
from shared.store import media as media_store
from shared.store.media import MediaRecord
from tests.conftest import own_media_bucket


@pytest.fixture
def bucket(aws_endpoint: str, env: pytest.MonkeyPatch) -> Iterator[str]:
    with own_media_bucket(env, "wagw-media-store") as name:
        yield name


def inbound_record(data: bytes, sha256: str | None) -> MediaRecord:
    media_id = "med_" + uuid.uuid4().hex[:26]
    return MediaRecord(
        id=media_id,
        workspace_id="ws_media",
        source="inbound",
        mimetype="image/jpeg",
        size=len(data),
        filename="photo.jpg",
        sha256=sha256,
        s3_key=media_store.object_key("ws_media", media_id),
    )


async def test_bytes_are_stored_with_the_announced_sha256_as_their_checksum(bucket: str) -> None:
    # Given an inbound file and its sha256, as its message.media event announces it
    data = bytes(range(256)) * 4096
    record = inbound_record(data, hashlib.sha256(data).hexdigest())
    # When it is written
    await media_store.write(record, data)
    # Then S3 keeps that digest as the object's checksum, and the bytes read back are the same
    head = aws.s3().head_object(Bucket=bucket, Key=record.s3_key, ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == media_store.checksum_sha256(record)
    assert head["ServerSideEncryption"] == "AES256"
    assert await media_store.read(record, len(data)) == data


async def test_bytes_that_do_not_match_the_announced_sha256_are_refused(bucket: str) -> None:
    # Given a record whose sha256 is not that of the bytes
    data = b"the bytes the page gave" * 1000
    record = inbound_record(data, hashlib.sha256(b"other bytes").hexdigest())
    # When they are written, Then S3 refuses them and nothing is stored
    with pytest.raises(ClientError) as refused:
        await media_store.write(record, data)
    assert refused.value.response["Error"]["Code"] in ("BadDigest", "InvalidRequest", "XAmzContentChecksumMismatch")
    assert await media_store.stored_size(record) is None


async def test_a_record_without_a_digest_is_stored_as_before(bucket: str) -> None:
    # Given a record with no sha256 (an upload's, before anything was uploaded)
    data = b"%PDF-1.4\n" + bytes(100)
    record = inbound_record(data, None)
    # When it is written, Then the bytes are there, with botocore's own checksum
    await media_store.write(record, data)
    assert await media_store.stored_size(record) == len(data)
    head = aws.s3().head_object(Bucket=bucket, Key=record.s3_key, ChecksumMode="ENABLED")
    assert "ChecksumSHA256" not in head


async def test_the_record_is_saved_with_its_expiry(redis: Redis) -> None:
    # Given a record
    record = inbound_record(b"x", hashlib.sha256(b"x").hexdigest())
    # When it is saved
    await media_store.save(redis, record)
    # Then it reads back whole, and expires with the bucket's objects
    assert await media_store.get(redis, record.id) == record
    ttl = await redis.ttl(keys.media(record.id))
    assert media_store.record_ttl_seconds() - 5 <= ttl <= media_store.record_ttl_seconds()
