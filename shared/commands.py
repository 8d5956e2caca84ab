"""Commands from the API to the worker that owns a session, carried by a Redis stream per session."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, TypeAdapter
from redis.asyncio import Redis

from shared import redis_keys as keys
from shared.ids import new_id
from shared.outgoing import OutgoingContent

COMMANDS_GROUP = "workers"
COMMAND_STREAM_MAXLEN = 10_000


class _Command(BaseModel):
    command_id: str = Field(default_factory=lambda: new_id("cmd"))
    session_id: str
    issued_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class SendTextCommand(_Command):
    type: Literal["send_text"] = "send_text"
    message_id: str
    client_message_id: str
    to: str
    text: str


class SendMessageCommand(_Command):
    """Any message but a plain text: media, location, contact, reaction, or a text that replies or mentions."""

    type: Literal["send_message"] = "send_message"
    message_id: str
    client_message_id: str
    to: str
    content: OutgoingContent


class MarkReadCommand(_Command):
    type: Literal["mark_read"] = "mark_read"
    chat: str


class TypingCommand(_Command):
    """Show typing (or recording) in a chat for a few seconds, or stop showing it (`paused`)."""

    type: Literal["typing"] = "typing"
    chat: str
    state: Literal["composing", "recording", "paused"] = "composing"
    seconds: float = Field(default=5.0, ge=0, le=60)


class DeleteMessageCommand(_Command):
    """Delete a sent message for everyone."""

    type: Literal["delete_message"] = "delete_message"
    message_id: str
    wa_message_id: str


class EditMessageCommand(_Command):
    """Edit a sent text."""

    type: Literal["edit_message"] = "edit_message"
    message_id: str
    wa_message_id: str
    text: str


class LogoutCommand(_Command):
    type: Literal["logout"] = "logout"


class RestartCommand(_Command):
    type: Literal["restart"] = "restart"


class StopCommand(_Command):
    """Stop driving the session (deleted, retired or timed out) without logging the phone out."""

    type: Literal["stop"] = "stop"
    reason: str = ""


class RequestPairingCodeCommand(_Command):
    type: Literal["request_pairing_code"] = "request_pairing_code"
    phone: str


class ReadCommand(_Command):
    """A question for the worker that owns the session (is a number on WhatsApp, chats, history, groups). The
    answer goes to `keys.read_reply(request_id)`; nobody waits for it after `expires_at_ms`, so a worker that
    finds it later (a takeover) skips it."""

    type: Literal["read"] = "read"
    request_id: str
    query: Literal["contact", "chats", "messages", "groups", "participants"]
    target: str | None = None  # the phone number, chat id or group id asked about
    limit: int = Field(default=50, ge=1, le=100)
    cursor: str | None = None  # where the previous page ended (a chat, message or group id)
    expires_at_ms: int


Command = Annotated[
    SendTextCommand
    | SendMessageCommand
    | MarkReadCommand
    | TypingCommand
    | DeleteMessageCommand
    | EditMessageCommand
    | LogoutCommand
    | RestartCommand
    | StopCommand
    | RequestPairingCodeCommand
    | ReadCommand,
    Field(discriminator="type"),
]
command_adapter: TypeAdapter[Command] = TypeAdapter(Command)


async def enqueue_command(redis: Redis, command: Command) -> str:
    """Append to the session's command stream; returns the stream entry id."""
    entry_id = await redis.xadd(
        keys.session_commands(command.session_id),
        {"command": command.model_dump_json()},
        maxlen=COMMAND_STREAM_MAXLEN,
        approximate=True,
    )
    return str(entry_id)


def parse_command(fields: dict[str, str]) -> Command:
    return command_adapter.validate_json(fields["command"])
