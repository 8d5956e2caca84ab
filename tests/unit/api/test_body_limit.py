"""The body limit middleware on a tiny in-process app (no network): 413 declared or streamed, else untouched."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from functions.api.middleware import BodyLimitMiddleware


async def echo(request: Request) -> JSONResponse:
    return JSONResponse({"size": len(await request.body())})


def client(limit: int) -> httpx.AsyncClient:
    app = Starlette(routes=[Route("/", echo, methods=["POST", "GET"])])
    app.add_middleware(BodyLimitMiddleware, limit=limit)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def stream(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_at_the_limit_passes_and_one_byte_over_is_413() -> None:
    async with client(100) as http:
        assert (await http.post("/", content=b"x" * 100)).json() == {"size": 100}
        over = await http.post("/", content=b"x" * 101)
        assert over.status_code == 413 and over.headers["content-type"] == "application/problem+json"


async def test_streamed_bodies_are_counted_and_replayed_whole() -> None:
    async with client(100) as http:
        ok = await http.post("/", content=stream(b"y" * 90, 7))
        assert ok.json() == {"size": 90}
        over = await http.post("/", content=stream(b"y" * 130, 7))
        assert over.status_code == 413 and over.json()["status"] == 413
