"""Workspaces and their API keys (created by the admin; keys also managed by the workspace itself)."""

from __future__ import annotations

from functions.api import auth, errors
from shared.ids import new_id
from shared.redis_client import get_redis
from shared.settings import get_settings
from shared.store import api_keys, workspaces
from shared.store.records import ApiKeyRecord, WorkspaceRecord, now_ms


async def create_workspace(name: str) -> WorkspaceRecord:
    return await workspaces.create_workspace(get_redis(), WorkspaceRecord(id=new_id("ws"), name=name))


async def get_workspace(workspace_id: str) -> WorkspaceRecord:
    record = await workspaces.get_workspace(get_redis(), workspace_id)
    if record is None:
        raise errors.NotFound("workspace", workspace_id)
    return record


async def update_settings(workspace_id: str, changes: dict[str, object]) -> WorkspaceRecord:
    record = await workspaces.update_workspace(get_redis(), workspace_id, **changes)
    if record is None:
        raise errors.NotFound("workspace", workspace_id)
    return record


async def create_key(workspace_id: str, name: str, scopes: list[str]) -> tuple[ApiKeyRecord, str]:
    """A new key for the workspace; returns the record and the secret key (shown once)."""
    await get_workspace(workspace_id)
    key = auth.generate_key()
    record = ApiKeyRecord(
        id=new_id("key"),
        workspace_id=workspace_id,
        name=name,
        scopes=sorted(set(scopes)),
        key_hash=auth.hash_key(key),
        prefix=auth.display_prefix(key),
    )
    await api_keys.put_api_key(get_redis(), record)
    return record, key


async def list_keys(workspace_id: str) -> list[ApiKeyRecord]:
    await get_workspace(workspace_id)
    return await api_keys.list_api_keys(get_redis(), workspace_id)


async def _owned_key(workspace_id: str, key_id: str) -> ApiKeyRecord:
    record = await api_keys.get_api_key(get_redis(), workspace_id, key_id)
    if record is None or record.workspace_id != workspace_id:
        raise errors.NotFound("api key", key_id)
    return record


async def rotate_key(workspace_id: str, key_id: str, grace_seconds: int | None) -> tuple[ApiKeyRecord, str]:
    """A new key with the same name and scopes; the old one keeps working for the grace window."""
    old = await _owned_key(workspace_id, key_id)
    grace = get_settings().api_key_rotation_grace_seconds if grace_seconds is None else grace_seconds
    new, key = await create_key(workspace_id, old.name, old.scopes)
    deadline = now_ms() + grace * 1000
    if old.expires_at_ms is None or old.expires_at_ms > deadline:
        await api_keys.expire_api_key(get_redis(), old, deadline)
        auth.forget(old.key_hash)
    return new, key


async def revoke_key(workspace_id: str, key_id: str) -> None:
    record = await _owned_key(workspace_id, key_id)
    await api_keys.revoke_api_key(get_redis(), record)
    auth.forget(record.key_hash)
