"""The API's input and output models. Stored shapes live in `shared.store.records`; these are what
tenants send (strict: unknown fields refused) and what they get back (no secrets except on creation)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from shared.events import EventType, SessionStatus
from shared.outgoing import MIMETYPE_PATTERN, OutgoingContent
from shared.store.media import MediaRecord
from shared.store.messages import MessageRecord, MessageStatus
from shared.store.records import ApiKeyRecord, EndpointRecord, SessionRecord, WorkspaceRecord

Scope = Literal["read", "send", "manage"]
PHONE_PATTERN = r"^[1-9][0-9]{6,14}$"
CHAT_PATTERN = r"^[1-9][0-9]{6,14}(@c\.us)?$|^[0-9]{6,20}@lid$|^[0-9]{6,30}(-[0-9]{1,20})?@g\.us$"
CLIENT_ID_PATTERN = r"^[A-Za-z0-9_\-:.]{1,128}$"

T = TypeVar("T")


def ms_to_dt(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms else None


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Inputs ----------------------------------------------------------------------------------------
class WorkspaceCreate(_In):
    name: str = Field(min_length=1, max_length=100)


class ApiKeyCreate(_In):
    name: str = Field(default="", max_length=100)
    scopes: list[Scope] = Field(default=["read", "send"], min_length=1, max_length=3)


class ApiKeyRotate(_In):
    grace_seconds: int | None = Field(
        default=None, ge=0, le=7 * 24 * 3600, description="how long the old key keeps working (default: setting)"
    )


class SessionCreate(_In):
    name: str = Field(default="", max_length=100)
    phone: str | None = Field(
        default=None,
        pattern=PHONE_PATTERN,
        description="international number, digits only; enables pairing-code login and retires stale sessions",
    )


class PairingCodeRequest(_In):
    phone: str | None = Field(default=None, pattern=PHONE_PATTERN, description="defaults to the session's phone")


class MessageCreate(OutgoingContent):
    """One message of any `type`: `text` (the default) needs `text`; `image`, `video`, `audio`, `voice`, `document`
    and `sticker` need `media` (`text` is the caption); `location`, `contact` and `reaction` need the part of that
    name. Any of them but a reaction can quote a message (`reply_to`) and mention contacts (`mentions`)."""

    to: str = Field(
        pattern=CHAT_PATTERN,
        description="a phone number (digits), `<phone>@c.us`, a LID `<digits>@lid` or a group `<id>@g.us`",
    )
    client_message_id: str = Field(pattern=CLIENT_ID_PATTERN, description="your idempotency key for this message")

    def content(self) -> OutgoingContent:
        return OutgoingContent.model_validate(self.model_dump(exclude={"to", "client_message_id"}))


class EndpointCreate(_In):
    url: str = Field(min_length=1, max_length=2048)
    event_types: list[EventType] = Field(default_factory=list, max_length=20, description="empty: every type")
    description: str = Field(default="", max_length=500)
    enabled: bool = True


class EndpointUpdate(_In):
    url: str | None = Field(default=None, min_length=1, max_length=2048)
    event_types: list[EventType] | None = Field(default=None, max_length=20)
    description: str | None = Field(default=None, max_length=500)
    enabled: bool | None = None


class SecretRotate(_In):
    overlap_seconds: int | None = Field(
        default=None, ge=0, le=7 * 24 * 3600, description="how long the old secret keeps signing (default: setting)"
    )


class RetrySince(_In):
    since: datetime = Field(description="retry dead letters dead-lettered at or after this time")
    limit: int = Field(default=1000, ge=1, le=1000)


# Outputs ---------------------------------------------------------------------------------------
class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class WorkspaceOut(BaseModel):
    id: str
    name: str
    created_at: datetime
    reject_calls: bool = Field(description="its sessions reject incoming WhatsApp calls")
    send_gap_ms: int | None = Field(description="pacing overrides (null: the deployment's default)")
    send_jitter_ms: int | None
    send_queue_max: int | None
    typing_before_send: bool | None

    @classmethod
    def of(cls, record: WorkspaceRecord) -> WorkspaceOut:
        return cls(
            id=record.id,
            name=record.name,
            created_at=ms_to_dt(record.created_at_ms) or datetime.now(UTC),
            reject_calls=record.reject_calls,
            send_gap_ms=record.send_gap_ms,
            send_jitter_ms=record.send_jitter_ms,
            send_queue_max=record.send_queue_max,
            typing_before_send=record.typing_before_send,
        )


class WorkspaceSettings(_In):
    reject_calls: bool | None = Field(default=None, description="reject incoming WhatsApp calls (call.received)")
    send_gap_ms: int | None = Field(default=None, ge=0, le=600_000, description="least time between two sends")
    send_jitter_ms: int | None = Field(default=None, ge=0, le=600_000, description="plus a random 0..this")
    send_queue_max: int | None = Field(default=None, ge=1, le=100_000, description="429 past this many queued")
    typing_before_send: bool | None = Field(default=None, description="show typing while a send waits its turn")


class ApiKeyOut(BaseModel):
    id: str
    workspace_id: str
    name: str
    scopes: list[str]
    prefix: str = Field(description="the key's first characters, to tell keys apart")
    created_at: datetime
    expires_at: datetime | None

    @classmethod
    def of(cls, record: ApiKeyRecord) -> ApiKeyOut:
        return cls(
            id=record.id,
            workspace_id=record.workspace_id,
            name=record.name,
            scopes=record.scopes,
            prefix=record.prefix,
            created_at=ms_to_dt(record.created_at_ms) or datetime.now(UTC),
            expires_at=ms_to_dt(record.expires_at_ms),
        )


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="the secret key: shown only now")


class WhoAmI(BaseModel):
    workspace: WorkspaceOut
    key_id: str
    scopes: list[str]


class SessionOut(BaseModel):
    id: str
    name: str
    phone: str | None
    status: SessionStatus
    reason: str | None
    owner: str | None = Field(description="the worker driving the session")
    has_qr: bool
    pairing_code: str | None
    created_at: datetime
    updated_at: datetime
    status_at: datetime | None

    @classmethod
    def of(cls, record: SessionRecord) -> SessionOut:
        return cls(
            id=record.id,
            name=record.name,
            phone=record.phone,
            status=record.status,
            reason=record.reason,
            owner=record.owner,
            has_qr=bool(record.qr),
            pairing_code=record.pairing_code,
            created_at=ms_to_dt(record.created_at_ms) or datetime.now(UTC),
            updated_at=ms_to_dt(record.updated_at_ms) or datetime.now(UTC),
            status_at=ms_to_dt(record.status_at_ms),
        )


class SessionCreated(SessionOut):
    retired_session_ids: list[str] = Field(description="stale sessions of the same phone retired for this one")


class QrOut(BaseModel):
    session_id: str
    status: SessionStatus
    qr: str | None = Field(description="the text to encode as a QR code; null when there is none to scan")
    expires_at: str | None


class PairingCodeOut(BaseModel):
    session_id: str
    status: SessionStatus
    code: str | None


class CommandAccepted(BaseModel):
    session_id: str
    command: str
    command_id: str


class TypingRequest(_In):
    state: Literal["composing", "recording", "paused"] = "composing"
    seconds: float = Field(default=5.0, ge=0, le=60)


class MessageEdit(_In):
    text: str = Field(min_length=1, max_length=65536)


class MediaUploadCreate(_In):
    mimetype: str = Field(max_length=127, pattern=MIMETYPE_PATTERN, examples=["image/jpeg"])
    size: int = Field(gt=0, description="bytes; the upload must be exactly this long")
    filename: str | None = Field(default=None, min_length=1, max_length=255)


class MediaUploadOut(BaseModel):
    id: str
    upload_url: str = Field(description="PUT the bytes here, with upload_headers, before expires_at")
    upload_headers: dict[str, str]
    expires_at: datetime


class MediaOut(BaseModel):
    id: str
    mimetype: str
    size: int
    filename: str | None
    sha256: str | None
    url: str = Field(description="a presigned download URL, valid until expires_at")
    expires_at: datetime

    @classmethod
    def of(cls, record: MediaRecord, url: str, expires_at: datetime) -> MediaOut:
        return cls(
            id=record.id,
            mimetype=record.mimetype,
            size=record.size,
            filename=record.filename,
            sha256=record.sha256,
            url=url,
            expires_at=expires_at,
        )


class MessageOut(BaseModel):
    id: str
    session_id: str
    to: str
    type: str
    client_message_id: str
    status: MessageStatus
    error: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, record: MessageRecord) -> MessageOut:
        return cls(
            id=record.id,
            session_id=record.session_id,
            to=record.to,
            type=record.kind or "text",
            client_message_id=record.client_message_id,
            status=record.status,
            error=record.error,
            created_at=ms_to_dt(record.created_at_ms) or datetime.now(UTC),
            updated_at=ms_to_dt(record.updated_at_ms) or datetime.now(UTC),
        )


class SendQueueOut(BaseModel):
    session_id: str
    depth: int = Field(description="messages waiting for their paced turn")
    messages: list[MessageOut] = Field(description="the first of them, oldest first")


class SendQueueCleared(BaseModel):
    session_id: str
    cancelled: list[str] = Field(description="ids of the messages cancelled (now failed)")


class SecretInfo(BaseModel):
    created_at: datetime
    expires_at: datetime | None


class EndpointOut(BaseModel):
    id: str
    url: str
    event_types: list[str]
    description: str
    enabled: bool
    disabled_reason: str | None
    secrets: list[SecretInfo] = Field(description="signing secrets in use (values are never shown again)")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, record: EndpointRecord) -> EndpointOut:
        return cls(
            id=record.id,
            url=record.url,
            event_types=record.event_types,
            description=record.description,
            enabled=record.enabled,
            disabled_reason=record.disabled_reason,
            secrets=[
                SecretInfo(
                    created_at=ms_to_dt(s.created_at_ms) or datetime.now(UTC), expires_at=ms_to_dt(s.expires_at_ms)
                )
                for s in record.secrets
                if s.active(int(datetime.now(UTC).timestamp() * 1000))
            ],
            created_at=ms_to_dt(record.created_at_ms) or datetime.now(UTC),
            updated_at=ms_to_dt(record.updated_at_ms) or datetime.now(UTC),
        )


class EndpointWithSecret(EndpointOut):
    secret: str = Field(description="the new signing secret (whsec_...): shown only now")


class TestPingOut(BaseModel):
    endpoint_id: str
    event_id: str
    delivered: bool
    status_code: int | None
    duration_ms: int
    error: str | None
