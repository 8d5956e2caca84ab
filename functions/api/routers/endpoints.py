"""Webhook endpoints (scope manage to change, read to list)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from functions.api.auth import ManageScope, Principal, ReadScope
from functions.api.logic import endpoints
from functions.api.models import (
    EndpointCreate,
    EndpointOut,
    EndpointUpdate,
    EndpointWithSecret,
    SecretRotate,
    TestPingOut,
)
from functions.api.problems import problems

router = APIRouter(prefix="/v1/endpoints", tags=["endpoints"])


@router.post("", status_code=status.HTTP_201_CREATED, responses=problems(403))
async def create_endpoint(body: EndpointCreate, principal: Principal = ManageScope) -> EndpointWithSecret:
    """Register a webhook URL; the signing secret is in this response only."""
    record, secret = await endpoints.create(
        principal.workspace_id,
        url=body.url,
        event_types=list(body.event_types),
        description=body.description,
        enabled=body.enabled,
    )
    return EndpointWithSecret(**EndpointOut.of(record).model_dump(), secret=secret)


@router.get("", responses=problems(403))
async def list_endpoints(principal: Principal = ReadScope) -> list[EndpointOut]:
    return [EndpointOut.of(r) for r in await endpoints.list_all(principal.workspace_id)]


@router.get("/{endpoint_id}", responses=problems(403, 404))
async def get_endpoint(endpoint_id: str, principal: Principal = ReadScope) -> EndpointOut:
    return EndpointOut.of(await endpoints.owned_endpoint(principal.workspace_id, endpoint_id))


@router.patch("/{endpoint_id}", responses=problems(403, 404))
async def update_endpoint(endpoint_id: str, body: EndpointUpdate, principal: Principal = ManageScope) -> EndpointOut:
    record = await endpoints.update(
        principal.workspace_id,
        endpoint_id,
        url=body.url,
        event_types=list(body.event_types) if body.event_types is not None else None,
        description=body.description,
        enabled=body.enabled,
    )
    return EndpointOut.of(record)


@router.delete("/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problems(403, 404))
async def delete_endpoint(endpoint_id: str, principal: Principal = ManageScope) -> Response:
    await endpoints.delete(principal.workspace_id, endpoint_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{endpoint_id}/rotate-secret", responses=problems(403, 404))
async def rotate_secret(
    endpoint_id: str, body: SecretRotate | None = None, principal: Principal = ManageScope
) -> EndpointWithSecret:
    """A new secret; the previous ones keep signing alongside it for `overlap_seconds`."""
    record, secret = await endpoints.rotate_secret(
        principal.workspace_id, endpoint_id, body.overlap_seconds if body else None
    )
    return EndpointWithSecret(**EndpointOut.of(record).model_dump(), secret=secret)


@router.post("/{endpoint_id}/test", responses=problems(403, 404))
async def test_endpoint(endpoint_id: str, principal: Principal = ManageScope) -> TestPingOut:
    """POST a signed `endpoint.test` event to the endpoint now and report how it answered."""
    event_id, delivered, status_code, duration_ms, error = await endpoints.test_ping(
        principal.workspace_id, endpoint_id
    )
    return TestPingOut(
        endpoint_id=endpoint_id,
        event_id=event_id,
        delivered=delivered,
        status_code=status_code,
        duration_ms=duration_ms,
        error=error,
    )
