"""The caller's own workspace: who am I, and (scope manage) its API keys."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from functions.api.auth import ManageScope, Principal, ReadScope
from functions.api.logic import workspaces
from functions.api.models import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    ApiKeyRotate,
    WhoAmI,
    WorkspaceOut,
    WorkspaceSettings,
)
from functions.api.problems import problems

router = APIRouter(prefix="/v1", tags=["workspace"])


@router.get("/workspace", responses=problems(403))
async def who_am_i(principal: Principal = ReadScope) -> WhoAmI:
    record = await workspaces.get_workspace(principal.workspace_id)
    return WhoAmI(workspace=WorkspaceOut.of(record), key_id=principal.key_id, scopes=sorted(principal.scopes))


@router.patch("/workspace", responses=problems(403))
async def update_settings(body: WorkspaceSettings, principal: Principal = ManageScope) -> WorkspaceOut:
    """Change the workspace's settings (only the fields given)."""
    record = await workspaces.update_settings(principal.workspace_id, body.model_dump(exclude_none=True))
    return WorkspaceOut.of(record)


@router.get("/keys", responses=problems(403))
async def list_keys(principal: Principal = ManageScope) -> list[ApiKeyOut]:
    return [ApiKeyOut.of(r) for r in await workspaces.list_keys(principal.workspace_id)]


@router.post("/keys", status_code=status.HTTP_201_CREATED, responses=problems(403))
async def create_key(body: ApiKeyCreate, principal: Principal = ManageScope) -> ApiKeyCreated:
    record, key = await workspaces.create_key(principal.workspace_id, body.name, list(body.scopes))
    return ApiKeyCreated(**ApiKeyOut.of(record).model_dump(), key=key)


@router.post("/keys/{key_id}/rotate", status_code=status.HTTP_201_CREATED, responses=problems(403, 404))
async def rotate_key(
    key_id: str, body: ApiKeyRotate | None = None, principal: Principal = ManageScope
) -> ApiKeyCreated:
    record, key = await workspaces.rotate_key(principal.workspace_id, key_id, body.grace_seconds if body else None)
    return ApiKeyCreated(**ApiKeyOut.of(record).model_dump(), key=key)


@router.delete("/keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problems(403, 404))
async def revoke_key(key_id: str, principal: Principal = ManageScope) -> Response:
    await workspaces.revoke_key(principal.workspace_id, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
