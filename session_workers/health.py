"""`/healthz`, `/readyz` and `/metrics` on a small HTTP port (the ECS health check and a scrape target)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

Probe = Callable[[], Awaitable[tuple[int, str]]]

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
