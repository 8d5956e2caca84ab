"""Media for outgoing messages: fetched from a tenant's HTTPS URL under the same rules as webhooks (no private or
internal addresses, the checked address is the one connected to, every redirect checked again), with a size cap
and a deadline; or read back from the media bucket for a tenant's upload. Either way the bytes reach the page as
base64, which `WPP.chat.sendFileMessage` takes as a data URL."""

from __future__ import annotations

import asyncio
import base64
import functools
import mimetypes
import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from shared.delivery import urlsafety
from shared.delivery.transport import SafeTransport
from shared.outgoing import MediaRef
from shared.redis_client import get_redis
from shared.settings import get_settings
from shared.store import media as media_store

MAX_REDIRECTS = 5


class MediaUnavailable(Exception):
    """The media could not be had; `reason` says why in words a tenant understands (starts with a code)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class MediaPayload:
    data: bytes
    mimetype: str
    filename: str | None

    def for_page(self) -> dict[str, str | None]:
        return {"data": base64.b64encode(self.data).decode(), "mimetype": self.mimetype, "filename": self.filename}


async def resolve_media(ref: MediaRef, *, workspace_id: str, max_bytes: int) -> MediaPayload:
    if ref.media_id is not None:
        return await _uploaded(ref, workspace_id=workspace_id, max_bytes=max_bytes)
    assert ref.url is not None
    data, served_type = await fetch(ref.url, max_bytes=max_bytes)
    filename = ref.filename or unquote(urlsplit(ref.url).path.rsplit("/", 1)[-1]) or None
    mimetype = ref.mimetype or served_type or (mimetypes.guess_type(filename or "")[0]) or "application/octet-stream"
    return MediaPayload(data, mimetype, filename)


async def _uploaded(ref: MediaRef, *, workspace_id: str, max_bytes: int) -> MediaPayload:
    assert ref.media_id is not None
    record = await media_store.get(get_redis(), ref.media_id)
    if record is None or record.workspace_id != workspace_id:
        raise MediaUnavailable(f"media_not_found: media {ref.media_id} does not exist (or has expired)")
    try:
        data = await media_store.read(record, max_bytes)
    except ValueError as exc:
        raise MediaUnavailable(f"media_too_large: {exc}") from exc
    except Exception as exc:
        raise MediaUnavailable(
            f"media_unavailable: media {ref.media_id} could not be read ({type(exc).__name__})"
        ) from exc
    return MediaPayload(data, ref.mimetype or record.mimetype, ref.filename or record.filename)


async def fetch(url: str, *, max_bytes: int) -> tuple[bytes, str | None]:
    """GET `url` (and its redirects) through the safe transport: (body, served content type)."""
    timeout = get_settings().media_fetch_timeout_seconds
    try:
        async with asyncio.timeout(timeout):
            return await _fetch(url, max_bytes)
    except TimeoutError as exc:
        raise MediaUnavailable(f"media_fetch_timeout: {url} did not answer within {timeout:g} s") from exc


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context for every fetch: building one loads the CA bundle, about 30 ms of CPU each time."""
    return httpx.create_ssl_context(trust_env=False)


async def _fetch(url: str, max_bytes: int) -> tuple[bytes, str | None]:
    transport = SafeTransport(limits=httpx.Limits(max_connections=4), ssl_context=_tls_context())
    async with httpx.AsyncClient(transport=transport, follow_redirects=False) as http:
        for _ in range(MAX_REDIRECTS + 1):
            try:
                await urlsafety.check_url(url)
                async with http.stream("GET", url) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    if response.status_code != 200:
                        raise MediaUnavailable(f"media_fetch_failed: {url} answered HTTP {response.status_code}")
                    declared = int(response.headers.get("content-length") or 0)
                    if declared > max_bytes:
                        raise MediaUnavailable(f"media_too_large: {url} is {declared} bytes, over {max_bytes}")
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body.extend(chunk)
                        if len(body) > max_bytes:
                            raise MediaUnavailable(f"media_too_large: {url} is over {max_bytes} bytes")
                    served = response.headers.get("content-type", "").split(";")[0].strip() or None
                    return bytes(body), served
            except urlsafety.UnsafeUrlError as exc:
                raise MediaUnavailable(f"media_url_refused: {exc}") from exc
            except httpx.HTTPError as exc:
                raise MediaUnavailable(f"media_fetch_failed: {url}: {type(exc).__name__}") from exc
    raise MediaUnavailable(f"media_fetch_failed: more than {MAX_REDIRECTS} redirects")
