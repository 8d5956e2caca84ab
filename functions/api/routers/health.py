"""Liveness for load balancers and local process managers: the app answers and Redis answers."""

from __future__ import annotations

from fastapi import APIRouter

from shared.redis_client import get_redis

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    await get_redis().ping()  # a Redis outage becomes the 503 problem of the error map
    return {"status": "ok"}
