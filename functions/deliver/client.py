"""The outbound HTTP client: pooled, one per event loop, made on first use and reused across invocations.

In Lambda, Powertools' async batch processor keeps one event loop per container, so the pool (and its
keep-alive connections to tenants) survives from one invocation to the next.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from dataclasses import dataclass

import httpx

from shared.delivery.policy import parse_retry_after
from shared.delivery.store import RESPONSE_LOG_BYTES
from shared.delivery.transport import SafeTransport
from shared.settings import get_settings

USER_AGENT = "wa-gateway-webhooks/1.0"
READ_CAP_BYTES = 64 * 1024  # read this much at most (so the connection can be reused), keep 1 KB

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = weakref.WeakKeyDictionary()


def get_http_client() -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        settings = get_settings()
        limits = httpx.Limits(
            max_connections=settings.delivery_max_connections,
            max_keepalive_connections=settings.delivery_max_connections,
        )
        client = httpx.AsyncClient(
            # connects only to the address it checked against urlsafety's rules (no DNS rebinding)
            transport=SafeTransport(limits=limits),
            timeout=httpx.Timeout(settings.delivery_timeout_seconds),
            follow_redirects=False,
            trust_env=False,  # never route tenant traffic through a proxy taken from the environment
            headers={"user-agent": USER_AGENT},
        )
        _clients[loop] = client
    return client


async def close_http_client() -> None:
    client = _clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()


@dataclass(frozen=True)
class HttpResult:
    status: int | None  # None: no response (timeout, connection refused or reset)
    latency_ms: float
    body: str = ""
    error: str | None = None
    retry_after: float | None = None


async def post(url: str, body: bytes, headers: dict[str, str]) -> HttpResult:
    """POST once; never raises for network trouble (it becomes `error`).

    Raises UnsafeUrlError when the host, resolved again for the connection, has an address urlsafety refuses.
    """
    timeout = get_settings().delivery_timeout_seconds
    started = time.perf_counter()

    def elapsed() -> float:
        return round((time.perf_counter() - started) * 1000, 2)

    try:
        async with asyncio.timeout(timeout):  # a total cap too: httpx's timeouts are per read/write
            request = get_http_client().build_request("POST", url, content=body, headers=headers)
            response = await get_http_client().send(request, stream=True)
            try:
                kept = bytearray()
                read = 0
                async for chunk in response.aiter_bytes():
                    if len(kept) < RESPONSE_LOG_BYTES:
                        kept += chunk[: RESPONSE_LOG_BYTES - len(kept)]
                    read += len(chunk)
                    if read >= READ_CAP_BYTES:
                        break
            finally:
                await response.aclose()
    except (TimeoutError, httpx.TimeoutException):
        return HttpResult(status=None, latency_ms=elapsed(), error="timeout")
    except httpx.HTTPError as exc:
        return HttpResult(status=None, latency_ms=elapsed(), error=f"{type(exc).__name__}: {exc}"[:300])
    return HttpResult(
        status=response.status_code,
        latency_ms=elapsed(),
        body=kept.decode("utf-8", errors="replace"),
        retry_after=parse_retry_after(response.headers.get("retry-after")),
    )
