"""Media objects: a record in Redis (who owns it, what it is, where it lies) and the bytes in the media bucket.

Tenants upload through a presigned PUT and fetch through presigned GETs: the bytes never pass through the API
(API Gateway and Lambda cap bodies). Objects live under a per-workspace prefix, encrypted at rest, and expire by
the bucket's lifecycle rule; the record expires with them.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Literal

from pydantic import BaseModel, Field
from redis.asyncio import Redis

from shared import aws
from shared import redis_keys as keys
from shared.settings import get_settings
from shared.store.records import now_ms

MediaSource = Literal["upload", "inbound"]


class MediaRecord(BaseModel):
    id: str
    workspace_id: str
    source: MediaSource
    mimetype: str
    size: int = Field(ge=0)
    filename: str | None = None
    sha256: str | None = None
    s3_key: str
    created_at_ms: int = Field(default_factory=now_ms)

    def to_hash(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.__dict__.items() if v is not None}


def object_key(workspace_id: str, media_id: str) -> str:
    return f"media/{workspace_id}/{media_id}"


def record_ttl_seconds() -> int:
    return get_settings().media_retention_days * 24 * 3600


async def save(redis: Redis, record: MediaRecord) -> None:
    """The record and its expiry in one round trip."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(keys.media(record.id), mapping=record.to_hash())
        pipe.expire(keys.media(record.id), record_ttl_seconds())
        await pipe.execute()


async def get(redis: Redis, media_id: str) -> MediaRecord | None:
    fields = await redis.hgetall(keys.media(media_id))
    return MediaRecord.model_validate({str(k): v for k, v in fields.items()}) if fields else None


# --- the bucket (boto3 is synchronous: called in a thread) ----------------------------------------------------
def presigned_put(record: MediaRecord, expires_seconds: int) -> str:
    """A PUT URL whose signature covers the type and the length: the upload must be what was declared."""
    return str(
        aws.s3().generate_presigned_url(
            "put_object",
            Params={
                "Bucket": get_settings().media_bucket,
                "Key": record.s3_key,
                "ContentType": record.mimetype,
                "ContentLength": record.size,
            },
            ExpiresIn=expires_seconds,
        )
    )


def presigned_get(record: MediaRecord, expires_seconds: int) -> str:
    params = {"Bucket": get_settings().media_bucket, "Key": record.s3_key, "ResponseContentType": record.mimetype}
    if record.filename:
        params["ResponseContentDisposition"] = f'attachment; filename="{record.filename}"'
    return str(aws.s3().generate_presigned_url("get_object", Params=params, ExpiresIn=expires_seconds))


async def stored_size(record: MediaRecord) -> int | None:
    """The uploaded object's size, or None when nothing was uploaded (yet)."""

    def head() -> int | None:
        try:
            answer = aws.s3().head_object(Bucket=get_settings().media_bucket, Key=record.s3_key)
        except aws.s3().exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return int(answer["ContentLength"])

    return await asyncio.to_thread(head)


async def read(record: MediaRecord, max_bytes: int) -> bytes:
    def get_object() -> bytes:
        body = aws.s3().get_object(Bucket=get_settings().media_bucket, Key=record.s3_key)["Body"]
        data: bytes = body.read(max_bytes + 1)
        return data

    data = await asyncio.to_thread(get_object)
    if len(data) > max_bytes:
        raise ValueError(f"media {record.id} is larger than {max_bytes} bytes")
    return data


def checksum_sha256(record: MediaRecord) -> str | None:
    """The record's sha256 as S3's `ChecksumSHA256` (base64 of the digest), or None when it has none."""
    return base64.b64encode(bytes.fromhex(record.sha256)).decode() if record.sha256 else None


async def write(record: MediaRecord, data: bytes) -> None:
    """Put the bytes. With the record's sha256 (inbound media: the digest its event announces), S3 checks the bytes
    against it and refuses the put on a mismatch (`BadDigest`), and keeps it as the object's checksum; botocore
    then sends that digest instead of computing a CRC32 over the body itself."""
    params = {
        "Bucket": get_settings().media_bucket,
        "Key": record.s3_key,
        "Body": data,
        "ContentType": record.mimetype,
        "ServerSideEncryption": "AES256",
    }
    checksum = checksum_sha256(record)
    if checksum is not None:
        params["ChecksumSHA256"] = checksum

    def put() -> None:
        aws.s3().put_object(**params)

    await asyncio.to_thread(put)
