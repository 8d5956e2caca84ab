"""Operator routes (admin key): workspaces and their API keys."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response, status

from functions.api.auth import require_admin
from functions.api.logic import workspaces
from functions.api.models import ApiKeyCreate, ApiKeyCreated, ApiKeyOut, ApiKeyRotate, WorkspaceCreate, WorkspaceOut
from functions.api.problems import problems

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)])


@router.post("/workspaces", status_code=status.HTTP_201_CREATED, responses=problems())
async def create_workspace(body: WorkspaceCreate) -> WorkspaceOut:
    return WorkspaceOut.of(await workspaces.create_workspace(body.name))


@router.get("/workspaces/{workspace_id}", responses=problems(404))
async def get_workspace(workspace_id: str) -> WorkspaceOut:
    return WorkspaceOut.of(await workspaces.get_workspace(workspace_id))


@router.post("/workspaces/{workspace_id}/keys", status_code=status.HTTP_201_CREATED, responses=problems(404))
async def create_key(workspace_id: str, body: ApiKeyCreate) -> ApiKeyCreated:
    record, key = await workspaces.create_key(workspace_id, body.name, list(body.scopes))
    return ApiKeyCreated(**ApiKeyOut.of(record).model_dump(), key=key)


@router.get("/workspaces/{workspace_id}/keys", responses=problems(404))
async def list_keys(workspace_id: str) -> list[ApiKeyOut]:
    return [ApiKeyOut.of(r) for r in await workspaces.list_keys(workspace_id)]


@router.post(
    "/workspaces/{workspace_id}/keys/{key_id}/rotate", status_code=status.HTTP_201_CREATED, responses=problems(404)
)
async def rotate_key(workspace_id: str, key_id: str, body: ApiKeyRotate | None = None) -> ApiKeyCreated:
    record, key = await workspaces.rotate_key(workspace_id, key_id, body.grace_seconds if body else None)
    return ApiKeyCreated(**ApiKeyOut.of(record).model_dump(), key=key)


@router.delete(
    "/workspaces/{workspace_id}/keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problems(404)
)
async def revoke_key(workspace_id: str, key_id: str) -> Response:
    await workspaces.revoke_key(workspace_id, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
