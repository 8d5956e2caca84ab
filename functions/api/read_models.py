"""What the reads through the owning worker return (GET .../contacts, chats, messages, groups, participants).

The worker shapes its answer (`session_workers/queries.py`); these models are the contract the API holds it to.
"""

from __future__ import annotations

from datetime import datetime
from typing import Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


class ContactOut(BaseModel):
    phone: str
    on_whatsapp: bool
    chat_id: str | None = Field(description="the number's WhatsApp id (`<phone>@c.us`), null when not on WhatsApp")
    lid: str | None = Field(description="its LID (`<digits>@lid`) where WhatsApp has one for it")
    business: bool = False
    verified_name: str | None = None
    cached: bool = Field(False, description="answered from the session's cache, without asking WhatsApp")


class LocationOut(BaseModel):
    latitude: float
    longitude: float
    description: str | None = None


class HistoryMediaOut(BaseModel):
    id: str | None = Field(description="received media: GET /v1/media/{id} once the worker has stored it")
    mimetype: str | None = None
    size: int | None = None
    filename: str | None = None


class HistoryMessageOut(BaseModel):
    id: str
    chat_id: str | None = None
    sender: str | None = Field(default=None, alias="from")
    phone: str | None = None
    from_me: bool
    kind: str
    body: str = ""
    caption: str | None = None
    timestamp: datetime | None = None
    quoted_message_id: str | None = None
    mentions: list[str] = []
    location: LocationOut | None = None
    media: HistoryMediaOut | None = None
    ack: int | None = Field(default=None, description="own messages: -1 failed .. 3 read, 4 played")

    model_config = {"populate_by_name": True, "serialize_by_alias": True}


class ChatOut(BaseModel):
    id: str
    name: str | None = None
    group: bool
    unread_count: int = Field(description="-1: marked unread on the phone")
    archived: bool = False
    timestamp: datetime | None = None
    last_message: HistoryMessageOut | None = None


class GroupOut(BaseModel):
    id: str
    name: str | None = None
    participants: int | None = None
    unread_count: int = 0
    timestamp: datetime | None = None


class ParticipantOut(BaseModel):
    id: str
    phone: str | None = Field(description="null for a LID member whose number WhatsApp does not reveal")
    admin: bool
    super_admin: bool


class ReadPage(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None
