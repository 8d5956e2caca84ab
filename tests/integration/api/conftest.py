"""Fixtures for the API tests: the app over ASGI (httpx), workspaces with keys, helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from functions.api.app import create_app
from functions.api.logic import workspaces
from shared.settings import DEV_ADMIN_KEY

ALL_SCOPES = ["read", "send", "manage"]


@dataclass(frozen=True)
class Tenant:
    workspace_id: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


ADMIN_HEADERS = {"Authorization": f"Bearer {DEV_ADMIN_KEY}"}


async def make_tenant(name: str = "acme", scopes: list[str] | None = None) -> Tenant:
    workspace = await workspaces.create_workspace(name)
    _, key = await workspaces.create_key(workspace.id, "test", scopes or ALL_SCOPES)
    return Tenant(workspace.id, key)


async def key_for(tenant: Tenant, scopes: list[str]) -> Tenant:
    _, key = await workspaces.create_key(tenant.workspace_id, "limited", scopes)
    return Tenant(tenant.workspace_id, key)


@pytest.fixture
def app(redis: Redis) -> FastAPI:
    return create_app()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as http:
        yield http


@pytest.fixture
async def tenant(redis: Redis) -> Tenant:
    return await make_tenant("acme")


@pytest.fixture
async def other_tenant(redis: Redis) -> Tenant:
    return await make_tenant("globex")


async def create_session(client: httpx.AsyncClient, tenant: Tenant, **body: object) -> dict[str, object]:
    response = await client.post("/v1/sessions", json={"name": "main", **body}, headers=tenant.headers)
    assert response.status_code == 201, response.text
    data: dict[str, object] = response.json()
    return data


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, object] = response.json()
    assert body["status"] == status and str(body["type"]).startswith("/problems/") and body["title"]
    return body


class ServedApp:
    """The app under uvicorn on a free port, in a thread (real HTTP for browsers and schemathesis)."""

    def __init__(self, app: FastAPI) -> None:
        import threading
        import time

        import uvicorn

        from wagw_local.services import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn-api", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def served(app: FastAPI) -> Iterator[ServedApp]:
    served_app = ServedApp(app)
    yield served_app
    served_app.stop()
