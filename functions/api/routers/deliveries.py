"""Deliveries: attempts per event or delivery, dead-lettered deliveries, retry one, retry all since a time."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, status

from functions.api.auth import ManageScope, Principal, ReadScope
from functions.api.logic import deliveries
from functions.api.models import RetrySince
from functions.api.problems import problems
from shared.delivery.replay import AttemptView, DeadLetterPage, ReplayBatchResult, ReplayResult

router = APIRouter(prefix="/v1/deliveries", tags=["deliveries"])


@router.get("/attempts", responses=problems(403, 404))
async def list_attempts(
    principal: Principal = ReadScope,
    event_id: Annotated[str | None, Query(max_length=200)] = None,
    delivery_id: Annotated[str | None, Query(max_length=200)] = None,
    endpoint_id: Annotated[str | None, Query(max_length=200)] = None,
) -> list[AttemptView]:
    """Every HTTP attempt of one delivery, or of every delivery of one event (give exactly one id),
    oldest first; `endpoint_id` narrows an event's attempts to one endpoint."""
    return await deliveries.attempts(
        principal.workspace_id, event_id=event_id, delivery_id=delivery_id, endpoint_id=endpoint_id
    )


@router.get("/dead-letters", responses=problems(403))
async def list_dead_letters(
    principal: Principal = ReadScope,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> DeadLetterPage:
    """Deliveries that used up their attempts, oldest first; follow `next_cursor` for more."""
    return await deliveries.dead_letters(principal.workspace_id, since=since, limit=limit, cursor=cursor)


@router.post("/retry", status_code=status.HTTP_202_ACCEPTED, responses=problems(403, 503))
async def retry_since(body: RetrySince, principal: Principal = ManageScope) -> ReplayBatchResult:
    """Send again every dead letter since `since` (oldest first, at most `limit`); endpoints that are
    deleted or disabled are skipped and listed."""
    return await deliveries.retry_since(principal.workspace_id, body.since, body.limit)


@router.post("/{delivery_id}/retry", status_code=status.HTTP_202_ACCEPTED, responses=problems(403, 404, 409, 503))
async def retry_one(delivery_id: str, principal: Principal = ManageScope) -> ReplayResult:
    """Send one dead-lettered delivery again, with a fresh attempt budget and the same webhook-id."""
    return await deliveries.retry_one(principal.workspace_id, delivery_id)
