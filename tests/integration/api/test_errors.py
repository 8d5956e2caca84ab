"""One error format for everything: problem+json for 400, 404 (unknown route), 405, 413, 422 and 500."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.integration.api.conftest import Tenant, assert_problem, create_session


async def test_malformed_json_is_400(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.post(
        "/v1/sessions", content=b'{"name": ', headers={**tenant.headers, "content-type": "application/json"}
    )
    assert_problem(response, 400)


async def test_schema_violations_are_422_with_the_fields(client: httpx.AsyncClient, tenant: Tenant) -> None:
    session_id = (await create_session(client, tenant))["id"]
    response = await client.post(
        f"/v1/sessions/{session_id}/messages",
        json={"to": "not a phone", "text": "", "client_message_id": "ok", "extra": 1},
        headers=tenant.headers,
    )
    fields = {e["field"] for e in assert_problem(response, 422)["errors"]}  # type: ignore[union-attr]
    assert fields == {"body.to", "body.text", "body.extra"}


async def test_bodies_over_the_limit_are_413_whether_declared_or_streamed(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    big = b'{"name": "' + b"x" * (128 * 1024) + b'"}'
    declared = await client.post(
        "/v1/sessions", content=big, headers={**tenant.headers, "content-type": "application/json"}
    )
    assert_problem(declared, 413)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 16 * 1024):
            yield big[start : start + 16 * 1024]

    streamed = await client.post(
        "/v1/sessions", content=chunks(), headers={**tenant.headers, "content-type": "application/json"}
    )
    assert "content-length" not in streamed.request.headers
    assert_problem(streamed, 413)

    # A small streamed body still reaches the route
    async def small() -> AsyncIterator[bytes]:
        yield b'{"name": "streamed"}'

    ok = await client.post(
        "/v1/sessions", content=small(), headers={**tenant.headers, "content-type": "application/json"}
    )
    assert ok.status_code == 201 and ok.json()["name"] == "streamed"


async def test_unknown_routes_and_methods_are_problems_too(client: httpx.AsyncClient, tenant: Tenant) -> None:
    assert_problem(await client.get("/v1/nothing-here", headers=tenant.headers), 404)
    assert_problem(await client.put("/v1/sessions", headers=tenant.headers), 405)


async def test_a_bug_is_a_500_problem_without_details(
    app: FastAPI, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.api.logic import sessions

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(sessions, "list_sessions", broken)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as http:
        response = await http.get("/v1/sessions", headers=tenant.headers)
    body = assert_problem(response, 500)
    assert "secret internals" not in response.text and "detail" not in body


async def test_health_answers_without_a_key(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_a_redis_outage_is_a_503_problem(app: FastAPI, tenant: Tenant, env: pytest.MonkeyPatch) -> None:
    # Given Redis unreachable (a closed port)
    from shared.redis_client import close_redis
    from tests.conftest import refresh_settings
    from wagw_local.services import free_port

    await close_redis()
    env.setenv("WAGW_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    refresh_settings()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as http:
            response = await http.get("/v1/sessions", headers=tenant.headers)
        # Then the caller gets a 503 problem with Retry-After, not a bare 500
        assert_problem(response, 503)
        assert response.headers["retry-after"] == "5"
    finally:
        await close_redis()
