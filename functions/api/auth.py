"""Authentication: workspace API keys (Bearer, stored only as SHA-256 hashes, with scopes) and the admin key.

Keys carry 32 random bytes, so a fast hash is enough (nothing to brute-force); comparisons of the admin
key are constant-time.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from functions.api import errors
from shared import aws
from shared.redis_client import get_redis
from shared.settings import get_settings
from shared.store import api_keys
from shared.store.records import ApiKeyRecord

KEY_PREFIX = "wagw_sk_"
SCOPES = ("read", "send", "manage")

_admin_bearer = HTTPBearer(auto_error=False, scheme_name="AdminKey", description="the operator's admin key")


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    return key[: len(KEY_PREFIX) + 6]


@dataclass(frozen=True)
class Principal:
    workspace_id: str
    key_id: str
    scopes: frozenset[str]


# Keys this process looked up recently: key hash -> (trusted until, monotonic; record). Only keys that
# exist are kept; revocation in this process drops them at once (`forget`), elsewhere within the TTL.
_KEY_CACHE_MAX = 10_000
_key_cache: dict[str, tuple[float, ApiKeyRecord]] = {}
# One Redis lookup per key at a time: when a cached key expires under load, every request in flight
# would otherwise miss at once and each take a connection for the same GET.
_lookups_in_flight: dict[str, asyncio.Future[ApiKeyRecord | None]] = {}
_revocations = 0  # bumped by `forget`, so a lookup that raced a revocation does not cache its answer


def forget(key_hash: str) -> None:
    global _revocations
    _revocations += 1
    _key_cache.pop(key_hash, None)
    _lookups_in_flight.pop(key_hash, None)


async def _fetch(key_hash: str, ttl: float, revocations: int) -> ApiKeyRecord | None:
    record = await api_keys.api_key_by_hash(get_redis(), key_hash)
    if record is None or ttl <= 0 or revocations != _revocations:
        _key_cache.pop(key_hash, None)
        return record
    if len(_key_cache) >= _KEY_CACHE_MAX:
        _key_cache.clear()
    _key_cache[key_hash] = (time.monotonic() + ttl, record)
    return record


async def _lookup(key_hash: str) -> ApiKeyRecord | None:
    ttl = get_settings().api_key_cache_seconds
    cached = _key_cache.get(key_hash)
    if cached is not None and cached[0] > time.monotonic() and cached[1].live():
        return cached[1]
    loop = asyncio.get_running_loop()
    pending = _lookups_in_flight.get(key_hash)
    if pending is None or pending.get_loop() is not loop:
        pending = loop.create_task(_fetch(key_hash, ttl, _revocations))
        _lookups_in_flight[key_hash] = pending
        pending.add_done_callback(lambda done: _forget_lookup(key_hash, done))
    # shielded: one caller giving up (a client that hung up) does not cancel the others' lookup
    return await asyncio.shield(pending)


def _forget_lookup(key_hash: str, done: asyncio.Future[ApiKeyRecord | None]) -> None:
    if _lookups_in_flight.get(key_hash) is done:
        del _lookups_in_flight[key_hash]


async def authenticate(credentials: HTTPAuthorizationCredentials | None) -> ApiKeyRecord:
    if credentials is None or not credentials.credentials:
        raise errors.Unauthenticated("send a workspace API key as 'Authorization: Bearer <key>'")
    record = await _lookup(hash_key(credentials.credentials))
    if record is None:
        raise errors.Unauthenticated("the API key is unknown, revoked or expired")
    return record


class ScopedKey(HTTPBearer):
    """The dependency for routes that need a workspace key with `scope`: one FastAPI dependency (a security
    scheme, so OpenAPI documents it) that reads the header, finds the key and checks the scope."""

    def __init__(self, scope: str) -> None:
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}")
        super().__init__(auto_error=False, scheme_name="ApiKey", description=f"a workspace API key ({scope})")
        self.scope = scope

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        record = await authenticate(await super().__call__(request))
        if self.scope not in record.scopes:
            raise errors.MissingScope(self.scope)
        return Principal(workspace_id=record.workspace_id, key_id=record.id, scopes=frozenset(record.scopes))


# Admin key: from settings locally, from Secrets Manager when a secret name is configured ---------
_ADMIN_CACHE_SECONDS = 300.0
_admin_cache: tuple[float, str] | None = None


def _fetch_admin_key(secret_name: str) -> str:
    value: str = aws.secrets_manager().get_secret_value(SecretId=secret_name)["SecretString"]
    return value.strip()


async def admin_key() -> str:
    global _admin_cache
    settings = get_settings()
    if settings.admin_api_key_secret_name is None:
        return settings.admin_api_key.get_secret_value()
    now = time.monotonic()
    if _admin_cache is None or now - _admin_cache[0] > _ADMIN_CACHE_SECONDS:
        _admin_cache = (now, await asyncio.to_thread(_fetch_admin_key, settings.admin_api_key_secret_name))
    return _admin_cache[1]


async def require_admin(credentials: HTTPAuthorizationCredentials | None = Depends(_admin_bearer)) -> None:
    if credentials is None or not credentials.credentials:
        raise errors.Unauthenticated("send the admin key as 'Authorization: Bearer <key>'")
    if not hmac.compare_digest(credentials.credentials.encode(), (await admin_key()).encode()):
        raise errors.Unauthenticated("the admin key does not match")


ReadScope = Depends(ScopedKey("read"))
SendScope = Depends(ScopedKey("send"))
ManageScope = Depends(ScopedKey("manage"))
