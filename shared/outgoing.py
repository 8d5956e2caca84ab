"""What a tenant can send, beyond plain text: the typed parts of an outgoing message.

The API validates them (422 with the reason, before anything is queued) and the worker receives them in its
`SendMessageCommand`; the same models on both sides, so a message the API accepted is one the worker can send.
"""

from __future__ import annotations

import re
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

MessageKind = Literal[
    "text", "image", "video", "audio", "voice", "document", "sticker", "location", "contact", "reaction"
]
MEDIA_KINDS: frozenset[str] = frozenset({"image", "video", "audio", "voice", "document", "sticker"})
# The part each kind needs (besides `to`); text needs `text`.
KIND_PART: dict[str, str] = {
    **dict.fromkeys(MEDIA_KINDS, "media"),
    "location": "location",
    "contact": "contact",
    "reaction": "reaction",
}
WA_MESSAGE_ID_PATTERN = (
    r"^(true|false)_[0-9A-Za-z.\-]+@(c\.us|lid|g\.us|broadcast)_[0-9A-Za-z]{6,64}(_[0-9]+@(c\.us|lid))?$"
)
MEDIA_ID_PATTERN = r"^med_[0-9a-z]{26}$"
MIMETYPE_PATTERN = r"^[a-z]+/[0-9A-Za-z.+\-]+(;.*)?$"
MENTION_PATTERN = r"^[1-9][0-9]{6,14}(@c\.us)?$|^[0-9]{6,20}@lid$"
_MENTION = re.compile(MENTION_PATTERN)


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MediaRef(_Part):
    """Media by HTTPS URL (fetched by the worker through the outbound URL check) or by an uploaded media id."""

    url: str | None = Field(
        default=None, max_length=2048, pattern=r"^https?://", description="an https:// URL (the worker fetches it)"
    )
    media_id: str | None = Field(default=None, pattern=MEDIA_ID_PATTERN, description="from POST /v1/media")
    mimetype: str | None = Field(default=None, max_length=127, pattern=MIMETYPE_PATTERN)
    filename: str | None = Field(default=None, min_length=1, max_length=255)

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.url is None) == (self.media_id is None):
            raise ValueError("media needs exactly one of url or media_id")
        return self


class Location(_Part):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    name: str | None = Field(default=None, max_length=256)
    address: str | None = Field(default=None, max_length=512)
    url: str | None = Field(default=None, max_length=2048, pattern=r"^https?://")


class ContactCard(_Part):
    name: str = Field(min_length=1, max_length=256)
    phone: str = Field(pattern=r"^[1-9][0-9]{6,14}$", description="digits, with the country code")


class Reaction(_Part):
    message_id: str = Field(pattern=WA_MESSAGE_ID_PATTERN, description="WhatsApp's id of the message reacted to")
    emoji: str = Field(max_length=16, description="one emoji; empty removes the reaction")


class OutgoingContent(_Part):
    """Everything of an outgoing message but its address and idempotency key."""

    type: MessageKind = "text"
    text: str | None = Field(
        default=None, min_length=1, max_length=65536, description="the text, or a media message's caption"
    )
    media: MediaRef | None = None
    location: Location | None = None
    contact: ContactCard | None = None
    reaction: Reaction | None = None
    reply_to: str | None = Field(
        default=None, pattern=WA_MESSAGE_ID_PATTERN, description="WhatsApp's id of the message this one quotes"
    )
    mentions: list[str] = Field(default_factory=list, max_length=50, description="phone numbers or LIDs mentioned")

    @model_validator(mode="after")
    def _parts_match_the_type(self) -> Self:
        needed = KIND_PART.get(self.type)
        if self.type == "text" and self.text is None:
            raise ValueError("a text message needs a text")
        for part in ("media", "location", "contact", "reaction"):
            present = getattr(self, part) is not None
            if part == needed and not present:
                raise ValueError(f"a {self.type} message needs {part}")
            if part != needed and present:
                raise ValueError(f"{part} does not go with a {self.type} message")
        if self.type in ("location", "contact", "reaction") and self.text:
            raise ValueError(f"a {self.type} message has no text")
        if self.type == "reaction" and (self.reply_to or self.mentions):
            raise ValueError("a reaction cannot reply to or mention anyone")
        for mention in self.mentions:
            if not _MENTION.match(mention):
                raise ValueError(f"mention {mention!r} is not a phone number or a LID")
        return self

    @property
    def plain_text(self) -> bool:
        """A text with no reply and no mentions: the send path that needs nothing more."""
        return self.type == "text" and not self.reply_to and not self.mentions
