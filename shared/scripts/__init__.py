"""Lua scripts for multi-step Redis updates, loaded by name so no reader sees half a change."""

from __future__ import annotations

from functools import cache
from importlib import resources

from redis.asyncio import Redis
from redis.commands.core import AsyncScript


@cache
def source(name: str) -> str:
    return resources.files(__package__).joinpath(f"{name}.lua").read_text()


def script(redis: Redis, name: str) -> AsyncScript:
    """A registered script (EVALSHA, falling back to EVAL when the server does not know it yet)."""
    return redis.register_script(source(name))
