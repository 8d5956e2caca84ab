"""The event envelope every producer posts and every tenant webhook receives."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from shared.ids import new_event_id

ID_PATTERN = r"^[A-Za-z0-9_\-:.]{1,128}$"


class SessionStatus(StrEnum):
    STARTING = "starting"
    QR = "qr"
    PAIRING = "pairing"
    AUTHENTICATED = "authenticated"
    READY = "ready"
    DISCONNECTED = "disconnected"
    CONFLICT = "conflict"
    LOGGED_OUT = "logged_out"
    FAILED = "failed"
    STOPPED = "stopped"
    RETIRED = "retired"


class Ack(IntEnum):
    """WhatsApp's ack levels, as wa-js reports them."""

    FAILED = -1
    CLOCK = 0
    SENT = 1
    RECEIVED = 2
    READ = 3
    PLAYED = 4
    PEER = 5


def ack_from_wa(value: int) -> Ack:
    """Any ack wa-js reports (whatsapp/enums/ACK.ts runs -7..5): every error kind (-7..-1) is FAILED."""
    if value < 0:
        return Ack.FAILED
    return Ack(min(value, int(Ack.PEER)))


def whatsapp_event_id(session_id: str, kind: str, whatsapp_message_id: str) -> str:
    """An event id derived from the WhatsApp message: the same message fired again (a restored or taken-over
    page, a double fire) gives the same id, and ingest's dedupe drops the repeat."""
    digest = hashlib.sha256(f"{session_id}\x00{kind}\x00{whatsapp_message_id}".encode()).hexdigest()[:40]
    return f"evw_{digest}"


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SessionStatusData(_Data):
    status: SessionStatus
    reason: str | None = Field(default=None, max_length=500)
    phone: str | None = Field(default=None, max_length=32)


class SessionQrData(_Data):
    qr: str = Field(min_length=1, max_length=4096)
    expires_at: datetime
    attempt: int = Field(default=1, ge=1)


class SessionPairingCodeData(_Data):
    code: str = Field(min_length=1, max_length=32)
    expires_at: datetime | None = None
    attempt: int = Field(default=1, ge=1)


class MediaInfo(_Data):
    """An inbound message's media. `pending` when the message is reported (it is never held back for its media);
    a `message.media` event follows with `available` (and a presigned `url`) or `failed` (and the `error`)."""

    id: str = Field(pattern=ID_PATTERN, description="GET /v1/media/{id} gives a fresh URL")
    status: Literal["pending", "available", "failed"]
    mimetype: str | None = Field(default=None, max_length=127)
    size: int | None = Field(default=None, ge=0)
    filename: str | None = Field(default=None, max_length=255)
    sha256: str | None = Field(default=None, max_length=64)
    url: str | None = Field(default=None, max_length=4096)
    expires_at: datetime | None = None
    error: str | None = Field(default=None, max_length=500)


class LocationInfo(_Data):
    latitude: float
    longitude: float
    description: str | None = Field(default=None, max_length=1024, description="name and address, as WhatsApp shows")


class MessageReceivedData(_Data):
    message_id: str = Field(min_length=1, max_length=256)
    chat_id: str = Field(min_length=1, max_length=128)
    sender: str = Field(alias="from", min_length=1, max_length=128)
    phone: str | None = Field(default=None, max_length=32, description="the sender's phone number, where known")
    body: str = Field(default="", max_length=65536, description="the text (a vCard for a contact)")
    kind: str = Field(default="chat", max_length=32, description="WhatsApp's type: chat, image, ptt, vcard, ...")
    timestamp: datetime | None = None
    caption: str | None = Field(default=None, max_length=65536)
    quoted_message_id: str | None = Field(default=None, max_length=256, description="the message it replies to")
    mentions: list[str] = Field(default_factory=list, max_length=256)
    location: LocationInfo | None = None
    media: MediaInfo | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class MessageMediaData(_Data):
    """The media of a message reported before (`message.received`): now available, or failed for good."""

    message_id: str = Field(min_length=1, max_length=256)
    chat_id: str = Field(min_length=1, max_length=128)
    media: MediaInfo


class MessageReactionData(_Data):
    message_id: str = Field(min_length=1, max_length=256, description="the message reacted to")
    chat_id: str | None = Field(default=None, max_length=128)
    sender: str = Field(alias="from", min_length=1, max_length=128)
    emoji: str = Field(max_length=64, description="empty: the reaction was removed")
    timestamp: datetime | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class MessageEditedData(_Data):
    message_id: str = Field(min_length=1, max_length=256)
    chat_id: str = Field(min_length=1, max_length=128)
    body: str = Field(max_length=65536, description="the new text")


class MessageRevokedData(_Data):
    message_id: str = Field(min_length=1, max_length=256, description="the message deleted for everyone")
    chat_id: str = Field(min_length=1, max_length=128)
    by: Literal["sender", "admin"] = "sender"
    author: str | None = Field(default=None, max_length=128)


class GroupParticipantsData(_Data):
    group_id: str = Field(min_length=1, max_length=128)
    action: Literal["add", "remove", "promote", "demote", "join", "leave"]
    participants: list[str] = Field(max_length=1024)
    author: str | None = Field(default=None, max_length=128)


class CallReceivedData(_Data):
    call_id: str = Field(min_length=1, max_length=128)
    sender: str = Field(alias="from", min_length=1, max_length=128)
    video: bool = False
    group: bool = False
    rejected: bool = Field(default=False, description="the gateway rejected it (workspace setting)")
    timestamp: datetime | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class MessageSentData(_Data):
    message_id: str = Field(min_length=1, max_length=256)
    client_message_id: str | None = Field(default=None, max_length=128)
    gateway_message_id: str | None = Field(default=None, max_length=128)
    to: str = Field(min_length=1, max_length=128)
    chat_id: str | None = Field(default=None, max_length=128, description="the chat WhatsApp used (may be a LID)")
    phone: str | None = Field(default=None, max_length=32, description="the recipient's phone number, where known")
    origin: Literal["api", "phone"] = "api"
    body: str | None = Field(default=None, max_length=65536, description="set for messages typed on the phone")
    kind: str | None = Field(default=None, max_length=32)
    timestamp: datetime | None = None
    ack: Ack = Ack.CLOCK


class MessageAckData(_Data):
    message_id: str = Field(min_length=1, max_length=256)
    chat_id: str | None = Field(default=None, max_length=128)
    ack: Ack
    reader: str | None = Field(default=None, max_length=128, description="in a group: whose receipt this is")


class MessageFailedData(_Data):
    message_id: str | None = Field(default=None, max_length=256, description="WhatsApp's id, when it has one")
    client_message_id: str | None = Field(default=None, max_length=128)
    gateway_message_id: str | None = Field(default=None, max_length=128)
    to: str = Field(min_length=1, max_length=128)
    reason: str = Field(max_length=500)


class PresenceData(_Data):
    chat_id: str = Field(min_length=1, max_length=128)
    state: str = Field(max_length=32)


class TypingData(_Data):
    chat_id: str = Field(min_length=1, max_length=128)
    state: Literal["composing", "recording", "paused"]


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=new_event_id, pattern=ID_PATTERN)
    workspace_id: str = Field(pattern=ID_PATTERN)
    session_id: str = Field(pattern=ID_PATTERN)
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class SessionStatusEvent(_Envelope):
    type: Literal["session.status"] = "session.status"
    data: SessionStatusData


class SessionQrEvent(_Envelope):
    type: Literal["session.qr"] = "session.qr"
    data: SessionQrData


class SessionPairingCodeEvent(_Envelope):
    type: Literal["session.pairing_code"] = "session.pairing_code"
    data: SessionPairingCodeData


class MessageReceivedEvent(_Envelope):
    type: Literal["message.received"] = "message.received"
    data: MessageReceivedData


class MessageSentEvent(_Envelope):
    type: Literal["message.sent"] = "message.sent"
    data: MessageSentData


class MessageAckEvent(_Envelope):
    type: Literal["message.ack"] = "message.ack"
    data: MessageAckData


class MessageFailedEvent(_Envelope):
    type: Literal["message.failed"] = "message.failed"
    data: MessageFailedData


class MessageMediaEvent(_Envelope):
    type: Literal["message.media"] = "message.media"
    data: MessageMediaData


class MessageReactionEvent(_Envelope):
    type: Literal["message.reaction"] = "message.reaction"
    data: MessageReactionData


class MessageEditedEvent(_Envelope):
    type: Literal["message.edited"] = "message.edited"
    data: MessageEditedData


class MessageRevokedEvent(_Envelope):
    type: Literal["message.revoked"] = "message.revoked"
    data: MessageRevokedData


class GroupParticipantsEvent(_Envelope):
    type: Literal["group.participants"] = "group.participants"
    data: GroupParticipantsData


class CallReceivedEvent(_Envelope):
    type: Literal["call.received"] = "call.received"
    data: CallReceivedData


class PresenceEvent(_Envelope):
    type: Literal["presence"] = "presence"
    data: PresenceData


class TypingEvent(_Envelope):
    type: Literal["typing"] = "typing"
    data: TypingData


Event = Annotated[
    SessionStatusEvent
    | SessionQrEvent
    | SessionPairingCodeEvent
    | MessageReceivedEvent
    | MessageSentEvent
    | MessageAckEvent
    | MessageFailedEvent
    | MessageMediaEvent
    | MessageReactionEvent
    | MessageEditedEvent
    | MessageRevokedEvent
    | GroupParticipantsEvent
    | CallReceivedEvent
    | PresenceEvent
    | TypingEvent,
    Field(discriminator="type"),
]

EventType = Literal[
    "session.status",
    "session.qr",
    "session.pairing_code",
    "message.received",
    "message.sent",
    "message.ack",
    "message.failed",
    "message.media",
    "message.reaction",
    "message.edited",
    "message.revoked",
    "group.participants",
    "call.received",
    "presence",
    "typing",
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)

event_adapter: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(raw: dict[str, Any]) -> Event:
    return event_adapter.validate_python(raw)


def event_to_json(event: Event) -> str:
    return event.model_dump_json(by_alias=True)


def event_to_dict(event: Event) -> dict[str, Any]:
    return event.model_dump(mode="json", by_alias=True)


def throttle_class(event: Event) -> str:
    """The throttle bucket an event draws from (limits per class live in settings)."""
    if event.type.startswith("message."):
        return "message"
    if isinstance(event, SessionStatusEvent) and event.data.status is SessionStatus.READY:
        return "session_ready"
    if event.type == "session.qr":
        return "session_qr"
    if event.type in ("presence", "typing"):
        return "low_value"
    return "default"
