"""Webhook endpoints of one workspace: CRUD, secret rotation with overlap, and a signed test ping."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import httpx

from functions.api import errors
from shared.delivery.transport import SafeTransport
from shared.delivery.urlsafety import UnsafeUrlError, check_url
from shared.ids import new_event_id, new_id
from shared.redis_client import get_redis
from shared.settings import get_settings
from shared.signing import generate_secret, sign
from shared.store import endpoints
from shared.store.records import EndpointRecord, EndpointSecret, now_ms

TEST_EVENT_TYPE = "endpoint.test"


async def owned_endpoint(workspace_id: str, endpoint_id: str) -> EndpointRecord:
    record = await endpoints.get_endpoint(get_redis(), endpoint_id)
    if record is None or record.workspace_id != workspace_id:
        raise errors.NotFound("endpoint", endpoint_id)
    return record


async def create(
    workspace_id: str, *, url: str, event_types: list[str], description: str, enabled: bool
) -> tuple[EndpointRecord, str]:
    await check_url(url)
    secret = generate_secret()
    record = EndpointRecord(
        id=new_id("ep"),
        workspace_id=workspace_id,
        url=url,
        secrets=[EndpointSecret(secret=secret)],
        event_types=sorted(set(event_types)),
        description=description,
        enabled=enabled,
    )
    return await endpoints.put_endpoint(get_redis(), record), secret


async def list_all(workspace_id: str) -> list[EndpointRecord]:
    return sorted(await endpoints.list_endpoints(get_redis(), workspace_id), key=lambda r: r.id)


async def update(
    workspace_id: str,
    endpoint_id: str,
    *,
    url: str | None,
    event_types: list[str] | None,
    description: str | None,
    enabled: bool | None,
) -> EndpointRecord:
    record = await owned_endpoint(workspace_id, endpoint_id)
    changes: dict[str, object] = {"updated_at_ms": now_ms()}
    if url is not None and url != record.url:
        await check_url(url)
        changes["url"] = url
    if event_types is not None:
        changes["event_types"] = sorted(set(event_types))
    if description is not None:
        changes["description"] = description
    if enabled is not None:
        changes["enabled"] = enabled
        if enabled:
            changes["disabled_reason"] = None
        elif record.enabled:
            changes["disabled_reason"] = "disabled_by_tenant"
    return await endpoints.put_endpoint(get_redis(), record.model_copy(update=changes))


async def delete(workspace_id: str, endpoint_id: str) -> None:
    await endpoints.delete_endpoint(get_redis(), await owned_endpoint(workspace_id, endpoint_id))


async def rotate_secret(workspace_id: str, endpoint_id: str, overlap_seconds: int | None) -> tuple[EndpointRecord, str]:
    """A new secret signs from now on; the old ones keep signing alongside it until the overlap ends."""
    record = await owned_endpoint(workspace_id, endpoint_id)
    overlap = get_settings().api_endpoint_secret_overlap_seconds if overlap_seconds is None else overlap_seconds
    moment = now_ms()
    deadline = moment + overlap * 1000
    kept = [
        s.model_copy(update={"expires_at_ms": min(s.expires_at_ms or deadline, deadline)})
        for s in record.secrets
        if s.active(moment)
    ]
    kept = [s for s in kept if s.active(moment)]
    secret = generate_secret()
    updated = record.model_copy(
        update={"secrets": [*kept, EndpointSecret(secret=secret, created_at_ms=moment)], "updated_at_ms": moment}
    )
    return await endpoints.put_endpoint(get_redis(), updated), secret


async def test_ping(workspace_id: str, endpoint_id: str) -> tuple[str, bool, int | None, int, str | None]:
    """POST a signed `endpoint.test` event to the endpoint now: (event id, delivered, status, ms, error)."""
    record = await owned_endpoint(workspace_id, endpoint_id)
    event_id = new_event_id()
    body = json.dumps(
        {
            "id": event_id,
            "type": TEST_EVENT_TYPE,
            "workspace_id": workspace_id,
            "session_id": "",
            "occurred_at": datetime.now(UTC).isoformat(),
            "data": {"endpoint_id": endpoint_id, "message": "test ping from wa-gateway"},
        },
        separators=(",", ":"),
    ).encode()
    started = time.perf_counter()
    try:
        await check_url(record.url)
    except UnsafeUrlError as exc:
        return event_id, False, None, 0, str(exc)
    headers = {**sign(record.active_secrets(), event_id, body).as_dict(), "content-type": "application/json"}
    try:
        async with httpx.AsyncClient(
            transport=SafeTransport(limits=httpx.Limits(max_connections=1)),  # connects to the address it checked
            timeout=get_settings().api_test_ping_timeout_seconds,
            follow_redirects=False,
            trust_env=False,
        ) as client:
            response = await client.post(record.url, content=body, headers=headers)
    except UnsafeUrlError as exc:  # the connect-time lookup answered differently (DNS rebinding): nothing sent
        return event_id, False, None, int((time.perf_counter() - started) * 1000), str(exc)
    except httpx.HTTPError as exc:
        elapsed = int((time.perf_counter() - started) * 1000)
        return event_id, False, None, elapsed, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    elapsed = int((time.perf_counter() - started) * 1000)
    ok = 200 <= response.status_code < 300
    return event_id, ok, response.status_code, elapsed, None if ok else f"endpoint answered {response.status_code}"
