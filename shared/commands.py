"""Commands from the API to the worker that owns a session, carried by a Redis stream per session."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, TypeAdapter
from redis.asyncio import Redis

from shared import redis_keys as keys
from shared.ids import new_id

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


Command = Annotated[
    SendTextCommand | LogoutCommand | RestartCommand | StopCommand | RequestPairingCodeCommand,
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
