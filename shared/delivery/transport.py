"""The outbound HTTP transport for tenant webhooks: the address that is checked is the address connected to.

`urlsafety.check_url` resolves a webhook host before each delivery, but a client that then resolves the name
again itself can be handed another address by a hostile DNS server (DNS rebinding: public to the check,
127.0.0.1 or 169.254.169.254 to the connect). Here the network backend resolves the host once per connection,
refuses it when any answer breaks urlsafety's address rules (`UnsafeUrlError`, nothing connected), and opens
the TCP connection to a checked IP. TLS is started by httpcore on that stream with `server_hostname` taken from
the request's origin, so SNI and certificate checks, and the Host header, stay on the hostname.

httpx 0.28's `AsyncHTTPTransport` takes no network backend, so `SafeTransport` is the same small adapter over
`httpcore.AsyncConnectionPool(network_backend=...)` (no proxies, HTTP/1.1), mapping httpcore's exceptions to
httpx's the way httpx does. `UnsafeUrlError` is left as it is, so callers can tell a refusal from network trouble.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence

import httpcore
import httpx

from shared.delivery import urlsafety
from shared.delivery.urlsafety import Address

Resolver = Callable[[str], Awaitable[Sequence[Address]]]

# httpcore exception -> httpx exception, most specific first (the table httpx's own transport uses).
_EXCEPTIONS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextlib.contextmanager
def _httpx_exceptions() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        mapped = next((theirs for ours, theirs in _EXCEPTIONS if isinstance(exc, ours)), None)
        if mapped is None:
            raise
        raise mapped(str(exc)) from exc


class SafeNetworkBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses urlsafety allows, resolving each host once and connecting to what it checked.

    In `dev` (plain http and local receivers allowed) it hands the host to the inner backend unchanged, as
    `check_url` lets everything through there.
    """

    def __init__(self, inner: httpcore.AsyncNetworkBackend | None = None, resolver: Resolver | None = None) -> None:
        self._inner = inner or httpcore.AnyIOBackend()
        self._resolver = resolver or urlsafety.lookup

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if not urlsafety.is_strict():
            return await self._inner.connect_tcp(
                host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
            )
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            async with asyncio.timeout(timeout):
                addresses = list(dict.fromkeys(await self._resolver(host)))
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host!r} timed out") from exc
        except OSError as exc:  # no answer is not unsafe, just no connection (retried like a refused connect)
            raise httpcore.ConnectError(f"webhook host {host!r} does not resolve: {exc}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"webhook host {host!r} resolved to no address")
        urlsafety.check_addresses(host, addresses)  # raises UnsafeUrlError before any connection is attempted
        failure: httpcore.ConnectError | None = None
        for address in addresses:  # getaddrinfo's order; the next one only when a connection is refused
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise httpcore.ConnectTimeout(f"connecting to {host!r} timed out")
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout=remaining, local_address=local_address, socket_options=socket_options
                )
            except httpcore.ConnectError as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise urlsafety.UnsafeUrlError("webhooks are never delivered over a unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_exceptions():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        closer = getattr(self._stream, "aclose", None)
        if closer is not None:
            await closer()


class SafeTransport(httpx.AsyncBaseTransport):
    """An httpx transport over a connection pool that connects through `SafeNetworkBackend` (no proxies)."""

    def __init__(
        self,
        *,
        limits: httpx.Limits,
        network_backend: httpcore.AsyncNetworkBackend | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=network_backend or SafeNetworkBackend(),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _httpx_exceptions():
            response = await self._pool.handle_async_request(core_request)
        assert isinstance(response.stream, AsyncIterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()
