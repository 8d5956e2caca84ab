"""Auth state in Redis (what RemoteAuth does for whatsapp-web.js): zstd archives, large ones in S3.

`keys.session_auth(sid)` is a hash: `strategy` (which archive format), `sha256` and `size` of the raw archive,
`saved_at_ms`, and either `data` (the zstd bytes, inline) or `s3_key` (a pointer into `settings.auth_bucket`,
`auth/<session_id>/<sha256>.zst`, content-addressed so a stale writer never overwrites the live object).
`keys.auth_index()` is the set of sessions with an archive (cleanup walks it). Writes are fenced.

With `auth_kms_key_id` set, the compressed archive is sealed (session_workers/archive_crypto.py: a KMS data key
per archive, AES-256-GCM bound to the session id) and the hash also holds `enc`, `edk` (the KMS-encrypted data
key), `key_arn` and `nonce`; `data` / the S3 object hold only ciphertext. Without a key (local runs) archives are
stored compressed only, which settings refuse outside `dev`.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import Any

import zstandard
from redis.asyncio import Redis

from session_workers.archive_crypto import (
    ENVELOPE,
    ArchiveUnreadable,
    KeyProvider,
    KmsKeyProvider,
    Sealed,
    open_sealed,
    seal,
)
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
    stale: bool = False  # not sealed, or sealed under a key that is no longer the configured one: re-seal on save

    @property
    def compare_sha(self) -> str:
        """The digest a session compares its next snapshot with: never equal for a stale archive, so it is saved."""
        return f"reseal:{self.sha256}" if self.stale else self.sha256


def digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


class AuthStore:
    """Reads and writes archives; `redis` must be a client with decode_responses=False (archives are bytes)."""

    def __init__(self, redis: Redis, worker_id: str, keys_provider: KeyProvider | None = None) -> None:
        self.redis = redis
        self.worker_id = worker_id
        self.settings = get_settings()
        key_id = self.settings.auth_kms_key_id
        self.keys: KeyProvider | None = keys_provider or (KmsKeyProvider(key_id) if key_id else None)

    async def warm(self) -> None:
        """Build the key service's client and resolve the configured key before any session needs them: in a
        takeover, the first restores would otherwise each build a client (~0.1 s of CPU apiece) at the same time."""
        if self.keys is None:
            return
        try:
            await asyncio.to_thread(self.keys.current_key_arn)
        except ArchiveUnreadable as exc:  # sessions report it when they need the key; the worker still starts
            logger.warning("the archive key is not usable yet", extra={"status": exc.status, "reason": exc.reason})

    async def save(self, lease: Lease, strategy: str, raw: bytes) -> int:
        """Store the archive (fenced); returns the stored (compressed) size."""
        sha = digest(raw)
        compressed = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(raw)
        fields: dict[str, bytes | str | int] = {
            "strategy": strategy,
            "sha256": sha,
            "size": len(raw),
            "saved_at_ms": now_ms(),
        }
        if self.keys is not None:
            sealed = await asyncio.to_thread(seal, self.keys, lease.session_id, strategy, sha, compressed)
            compressed = sealed.ciphertext
            fields.update(enc=ENVELOPE, edk=sealed.encrypted_key, key_arn=sealed.key_arn, nonce=sealed.nonce)
        elif self.settings.env != "dev":
            raise RuntimeError("auth archives are credentials: set WAGW_AUTH_KMS_KEY_ID outside dev")
        fields["stored"] = len(compressed)
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
        """The session's archive, or None. Raises ArchiveUnreadable (status, reason) for one that will not open."""
        fields: dict[Any, Any] = await self.redis.hgetall(keys.session_auth(session_id))  # type: ignore[misc]
        if not fields:
            return None
        text = {k.decode(): v for k, v in fields.items()}
        if b"s3_key" in fields:
            stored = await asyncio.to_thread(self._get_s3, text["s3_key"].decode())
            in_s3 = True
        else:
            stored, in_s3 = text["data"], False
        strategy, sha = text["strategy"].decode(), text["sha256"].decode()
        compressed, stale = await self._open(session_id, strategy, sha, text, stored)
        raw = zstandard.ZstdDecompressor().decompress(compressed)
        if digest(raw) != sha:
            # Starting fresh instead would show the tenant a QR and let the new page's first save overwrite the login.
            raise ArchiveUnreadable(
                "corrupt", "the archive's contents do not match its recorded SHA-256; a new QR scan is needed"
            )
        return AuthArchive(
            strategy=strategy,
            raw=raw,
            sha256=sha,
            saved_at_ms=int(text["saved_at_ms"]),
            stored_bytes=len(stored),
            in_s3=in_s3,
            stale=stale,
        )

    async def _open(
        self, session_id: str, strategy: str, sha: str, text: dict[str, Any], stored: bytes
    ) -> tuple[bytes, bool]:
        """(compressed archive, stale): unseal when sealed; stale when it should be re-sealed under the current key."""
        envelope = text.get("enc")
        if envelope is None:
            return stored, self.keys is not None
        if envelope.decode() != ENVELOPE:
            raise ArchiveUnreadable(
                "unknown_envelope", f"archive sealed as {envelope.decode()!r}; this worker reads {ENVELOPE}"
            )
        if self.keys is None:
            raise ArchiveUnreadable(
                "no_key_configured", "the archive is sealed with KMS but this worker has no WAGW_AUTH_KMS_KEY_ID"
            )
        sealed = Sealed(stored, text["edk"], text["key_arn"].decode(), text["nonce"])
        provider = self.keys
        compressed = await asyncio.to_thread(open_sealed, provider, session_id, strategy, sha, sealed)
        current = await asyncio.to_thread(provider.current_key_arn)
        return compressed, sealed.key_arn != current

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
