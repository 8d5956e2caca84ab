"""What the page reports -> the events a tenant receives (pure mapping, no I/O), and the media pipeline's naming.

Every event that stands for something WhatsApp did once (a message, a reaction, an edit, a deletion, a call) gets
an id derived from WhatsApp's own id, so the page firing it again (a double fire, a restored or taken-over page)
repeats the same event and ingest's dedupe drops it.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from shared.events import (
    CallReceivedData,
    GroupParticipantsData,
    LocationInfo,
    MediaInfo,
    MessageEditedData,
    MessageReactionData,
    MessageReceivedData,
    MessageRevokedData,
    PresenceData,
    TypingData,
)

# WhatsApp's message types with media, and the limit (settings.media_max_bytes) each is held to.
MEDIA_LIMIT_KIND = {
    "image": "image",
    "video": "video",
    "audio": "audio",
    "ptt": "voice",
    "document": "document",
    "sticker": "sticker",
}
TYPING_STATES = ("composing", "recording", "paused")
GROUP_ACTIONS = {
    "add": "add",
    "remove": "remove",
    "promote": "promote",
    "demote": "demote",
    "join": "join",
    "leaver": "leave",
}


def moment(stamp: Any) -> datetime | None:
    return datetime.fromtimestamp(int(stamp), UTC) if stamp else None


def media_id_for(session_id: str, whatsapp_message_id: str) -> str:
    """The media id of an inbound message's media: the same message always maps to the same media."""
    return "med_" + hashlib.sha256(f"{session_id}\x00media\x00{whatsapp_message_id}".encode()).hexdigest()[:26]


def received_data(session_id: str, data: dict[str, Any], chat: str, phone: str | None) -> MessageReceivedData:
    location = data.get("location")
    media = data.get("media")
    return MessageReceivedData(
        message_id=str(data["id"]),
        chat_id=chat,
        sender=str(data.get("from") or chat),
        phone=phone,
        body=str(data.get("body") or ""),
        kind=str(data.get("type") or "chat"),
        timestamp=moment(data.get("t")),
        caption=data.get("caption") or None,
        quoted_message_id=data.get("quoted") or None,
        mentions=[str(m) for m in data.get("mentions") or []],
        location=LocationInfo(latitude=location["lat"], longitude=location["lng"], description=location.get("loc"))
        if location
        else None,
        media=MediaInfo(
            id=media_id_for(session_id, str(data["id"])),
            status="pending",
            mimetype=media.get("mimetype"),
            size=media.get("size"),
            filename=media.get("filename"),
        )
        if media
        else None,
    )


def reaction_data(data: dict[str, Any]) -> MessageReactionData:
    target = str(data["target"])
    return MessageReactionData(
        message_id=target,
        chat_id=target.split("_")[1] if "_" in target else None,
        sender=str(data.get("sender") or "unknown"),
        emoji=str(data.get("emoji") or ""),
        timestamp=moment(data.get("t")),
    )


def edited_data(data: dict[str, Any]) -> MessageEditedData:
    message_id = str(data["id"])
    return MessageEditedData(
        message_id=message_id, chat_id=str(data.get("chat") or message_id.split("_")[1]), body=str(data.get("body"))
    )


def revoked_data(data: dict[str, Any]) -> MessageRevokedData:
    message_id = str(data["id"])
    return MessageRevokedData(
        message_id=message_id,
        chat_id=str(data.get("chat") or message_id.split("_")[1]),
        by="admin" if data.get("type") == "admin_revoke" else "sender",
        author=data.get("author") or None,
    )


def group_data(data: dict[str, Any]) -> GroupParticipantsData | None:
    action = GROUP_ACTIONS.get(str(data.get("action")))
    if action is None:
        return None
    return GroupParticipantsData(
        group_id=str(data["group"]),
        action=action,  # type: ignore[arg-type]
        participants=[str(p) for p in data.get("participants") or []],
        author=data.get("author") or None,
    )


def call_data(data: dict[str, Any], *, rejected: bool) -> CallReceivedData:
    return CallReceivedData(
        call_id=str(data["id"]),
        sender=str(data.get("from") or "unknown"),
        video=bool(data.get("video")),
        group=bool(data.get("group")),
        rejected=rejected,
        timestamp=moment(data.get("t")),
    )


def presence_or_typing(data: dict[str, Any]) -> PresenceData | TypingData:
    """chat.presence_change says both: typing states are `typing`, the rest (available, unavailable) `presence`."""
    chat, state = str(data["chat"]), str(data.get("state") or "")
    if state in TYPING_STATES:
        return TypingData(chat_id=chat, state=state)  # type: ignore[arg-type]
    return PresenceData(chat_id=chat, state=state or "unknown")


def event_key(*parts: str) -> str:
    """A stable identity for an event built from several WhatsApp facts (an edit is its message and new text)."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]
