"""Stored-record models: how workspaces, sessions and webhook endpoints are kept in Redis."""

from __future__ import annotations

import time

from pydantic import BaseModel, Field

from shared.events import SessionStatus


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class WorkspaceRecord(BaseModel):
    id: str
    name: str
    created_at_ms: int = Field(default_factory=now_ms)
    reject_calls: bool = False  # the workspace's sessions reject incoming WhatsApp calls (call.received says so)
    # Anti-ban pacing of its sessions' sends; None: the deployment's default (settings).
    send_gap_ms: int | None = None
    send_jitter_ms: int | None = None
    send_queue_max: int | None = None
    typing_before_send: bool | None = None


class SessionRecord(BaseModel):
    """A WhatsApp session; kept as a Redis hash so single fields can change atomically."""

    id: str
    workspace_id: str
    name: str = ""
    phone: str | None = None
    status: SessionStatus = SessionStatus.STARTING
    reason: str | None = None
    status_at_ms: int = 0
    qr: str | None = None
    qr_expires_at: str | None = None
    pairing_code: str | None = None
    owner: str | None = None
    created_at_ms: int = Field(default_factory=now_ms)
    updated_at_ms: int = Field(default_factory=now_ms)
    deleted_at_ms: int | None = None

    def to_hash(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.model_dump(mode="json").items() if v is not None}

    @classmethod
    def from_hash(cls, fields: dict[str, str]) -> SessionRecord:
        return cls.model_validate({k: v for k, v in fields.items() if v != ""})


class EndpointSecret(BaseModel):
    secret: str
    created_at_ms: int = Field(default_factory=now_ms)
    expires_at_ms: int | None = None

    def active(self, at_ms: int) -> bool:
        return self.expires_at_ms is None or self.expires_at_ms > at_ms


class EndpointRecord(BaseModel):
    """A tenant's webhook endpoint. `event_types` empty means every event type."""

    id: str
    workspace_id: str
    url: str
    secrets: list[EndpointSecret]
    enabled: bool = True
    disabled_reason: str | None = None
    event_types: list[str] = Field(default_factory=list)
    description: str = ""
    created_at_ms: int = Field(default_factory=now_ms)
    updated_at_ms: int = Field(default_factory=now_ms)

    def wants(self, event_type: str) -> bool:
        return self.enabled and (not self.event_types or event_type in self.event_types)

    def active_secrets(self, at_ms: int | None = None) -> list[str]:
        moment = now_ms() if at_ms is None else at_ms
        return [s.secret for s in self.secrets if s.active(moment)]


class ApiKeyRecord(BaseModel):
    """A workspace API key. Only the SHA-256 of the key is kept; `prefix` lets people tell keys apart."""

    id: str
    workspace_id: str
    name: str = ""
    scopes: list[str] = Field(default_factory=list)
    key_hash: str
    prefix: str
    created_at_ms: int = Field(default_factory=now_ms)
    expires_at_ms: int | None = None

    def live(self, at_ms: int | None = None) -> bool:
        moment = now_ms() if at_ms is None else at_ms
        return self.expires_at_ms is None or self.expires_at_ms > moment
