"""Auth state in Redis (what RemoteAuth does for whatsapp-web.js): zstd archives, large ones in S3.

`keys.session_auth(sid)` is a hash: `strategy` (which archive format), `sha256` and `size` of the raw archive,
`saved_at_ms`, and either `data` (the zstd bytes, inline) or `s3_key` (a pointer into `settings.auth_bucket`,
`auth/<session_id>/<sha256>.zst`, content-addressed so a stale writer never overwrites the live object).
`keys.auth_index()` is the set of sessions with an archive (cleanup walks it). Writes are fenced.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import Any

import zstandard
from redis.asyncio import Redis

from session_workers.ownership import FencedOff, Lease
from shared import redis_keys as keys
from shared.observability import logger
from shared.scripts import script
from shared.settings import get_settings
from shared.store.records import now_ms

S3_PREFIX = "auth/"
ZSTD_LEVEL = 3


@dataclass(frozen=True)
class AuthArchive:
    strategy: str
    raw: bytes  # uncompressed archive (context: storage-state JSON; profile: a tar of the profile's stores)
    sha256: str
    saved_at_ms: int
    stored_bytes: int
    in_s3: bool


def digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


class AuthStore:
    """Reads and writes archives; `redis` must be a client with decode_responses=False (archives are bytes)."""

    def __init__(self, redis: Redis, worker_id: str) -> None:
        self.redis = redis
        self.worker_id = worker_id
        self.settings = get_settings()

    async def save(self, lease: Lease, strategy: str, raw: bytes) -> int:
        """Store the archive (fenced); returns the stored (compressed) size."""
        sha = digest(raw)
        compressed = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(raw)
        fields: dict[str, bytes | str | int] = {
            "strategy": strategy,
            "sha256": sha,
            "size": len(raw),
            "stored": len(compressed),
            "saved_at_ms": now_ms(),
        }
        s3_key = None
        if len(compressed) > self.settings.auth_inline_max_bytes:
            s3_key = f"{S3_PREFIX}{lease.session_id}/{sha}.zst"
            await asyncio.to_thread(self._put_s3, s3_key, compressed)
            fields["s3_key"] = s3_key
        else:
            fields["data"] = compressed
        flat = [item for pair in fields.items() for item in pair]
        status, previous = await script(self.redis, "worker_auth_save")(
            keys=[
                keys.session_lease(lease.session_id),
                keys.session_fence(lease.session_id),
                keys.session_auth(lease.session_id),
                keys.auth_index(),
            ],
            args=[self.worker_id, lease.fence, lease.session_id, *flat],
        )
        previous_key = previous.decode() if isinstance(previous, bytes) else str(previous or "")
        if int(status) < 0:
            if s3_key:
                await asyncio.to_thread(self._delete_s3, s3_key)
            raise FencedOff(lease.session_id)
        if previous_key and previous_key != s3_key:
            await asyncio.to_thread(self._delete_s3, previous_key)
        return len(compressed)

    async def load(self, session_id: str) -> AuthArchive | None:
        fields: dict[Any, Any] = await self.redis.hgetall(keys.session_auth(session_id))  # type: ignore[misc]
        if not fields:
            return None
        text = {k.decode(): v for k, v in fields.items()}
        if b"s3_key" in fields:
            compressed = await asyncio.to_thread(self._get_s3, text["s3_key"].decode())
            in_s3 = True
        else:
            compressed, in_s3 = text["data"], False
        raw = zstandard.ZstdDecompressor().decompress(compressed)
        if digest(raw) != text["sha256"].decode():
            logger.error("auth archive digest mismatch; ignoring it", extra={"session_id": session_id})
            return None
        return AuthArchive(
            strategy=text["strategy"].decode(),
            raw=raw,
            sha256=text["sha256"].decode(),
            saved_at_ms=int(text["saved_at_ms"]),
            stored_bytes=len(compressed),
            in_s3=in_s3,
        )

    async def delete(self, lease: Lease) -> None:
        status, previous = await script(self.redis, "worker_auth_delete")(
            keys=[
                keys.session_lease(lease.session_id),
                keys.session_fence(lease.session_id),
                keys.session_auth(lease.session_id),
                keys.auth_index(),
            ],
            args=[self.worker_id, lease.fence, lease.session_id],
        )
        if int(status) < 0:
            raise FencedOff(lease.session_id)
        previous_key = previous.decode() if isinstance(previous, bytes) else str(previous or "")
        if previous_key:
            await asyncio.to_thread(self._delete_s3, previous_key)

    # --- S3 (boto3 is synchronous: called in a thread) ---------------------------------------------------
    def _put_s3(self, key: str, body: bytes) -> None:
        from shared.aws import s3

        s3().put_object(Bucket=self.settings.auth_bucket, Key=key, Body=body)

    def _get_s3(self, key: str) -> bytes:
        from shared.aws import s3

        body: bytes = s3().get_object(Bucket=self.settings.auth_bucket, Key=key)["Body"].read()
        return body

    def _delete_s3(self, key: str) -> None:
        from shared.aws import s3

        try:
            s3().delete_object(Bucket=self.settings.auth_bucket, Key=key)
        except Exception:  # an orphaned object is swept by cleanup; never fail a save for it
            logger.warning("could not delete an old auth archive from S3", extra={"key": key})
