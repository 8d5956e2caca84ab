"""`/healthz`, `/readyz` and `/metrics` on a small HTTP port (the ECS health check and a scrape target).

`/healthz` is liveness, what ECS's container health check asks (three failures replace the task): the process
answers and its browser responds. Redis plays no part in it: a Multi-AZ failover can leave Redis unreachable for a
minute or more, and a liveness that failed on that would replace every worker at once and hand every session over
in the middle of the failover. Redis trouble shows in `/readyz` (503 while heartbeats fail) and in the log instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from session_workers.browser import BrowserHost, SharedBrowserHost

Probe = Callable[[], Awaitable[tuple[int, str]]]
# Inside the ECS check's own 3 s request timeout (infra/components/workers.py), so a hung browser reads as a 503
# rather than as a check that timed out without saying why.
BROWSER_RESPONSE_SECONDS = 2.0


async def ping_browser(host: BrowserHost) -> None:
    """One round trip to the browser. The shared browser (context strategy) answers CDP `Browser.getVersion`; with
    a browser per session (profile strategy) each session watches its own, and the round trip goes to the
    Playwright driver that launches them."""
    if isinstance(host, SharedBrowserHost):
        browser = host.browser
        if browser is None or not browser.is_connected():
            raise ConnectionError("browser disconnected")
        cdp = await browser.new_browser_cdp_session()
        try:
            await cdp.send("Browser.getVersion")
        finally:
            await cdp.detach()
        return
    if not host.connected:
        raise ConnectionError("playwright driver not running")
    request = await (await host.playwright()).request.new_context()
    await request.dispose()


async def liveness(host: BrowserHost | None) -> tuple[int, str]:
    """200 when the browser answers within BROWSER_RESPONSE_SECONDS (no host: sessions bring their own)."""
    if host is None:
        return 200, "alive\n"
    try:
        async with asyncio.timeout(BROWSER_RESPONSE_SECONDS):
            await ping_browser(host)
    except TimeoutError:
        return 503, f"browser did not answer within {BROWSER_RESPONSE_SECONDS:g} s\n"
    except Exception as exc:
        return 503, f"browser not responding: {exc!r}\n"
    return 200, "alive\n"


REASONS = {200: "OK", 404: "Not Found", 503: "Service Unavailable", 500: "Internal Server Error"}


class HealthServer:
    def __init__(self, routes: dict[str, Probe], host: str = "0.0.0.0", port: int = 8090) -> None:
        self.routes = routes
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        sockets: Any = self._server.sockets or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = request_line.decode("latin-1").split()
            path = parts[1].split("?", 1)[0] if len(parts) >= 2 else "/"
            probe = self.routes.get(path)
            if probe is None:
                status, body = 404, "not found\n"
            else:
                try:
                    status, body = await asyncio.wait_for(probe(), 5)
                except Exception as exc:
                    status, body = 500, f"probe failed: {exc!r}\n"
            data = body.encode()
            head = (
                f"HTTP/1.1 {status} {REASONS.get(status, 'OK')}\r\ncontent-type: text/plain; charset=utf-8\r\n"
                f"content-length: {len(data)}\r\nconnection: close\r\n\r\n"
            )
            writer.write(head.encode() + data)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
