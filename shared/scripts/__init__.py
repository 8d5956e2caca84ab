"""Lua scripts for multi-step Redis updates, loaded by name so no reader sees half a change."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError


@cache
def source(name: str) -> str:
    return resources.files(__package__).joinpath(f"{name}.lua").read_text()


@cache
def digest(name: str) -> str:
    return hashlib.sha1(source(name).encode()).hexdigest()


def script(redis: Redis, name: str) -> AsyncScript:
    """A registered script (EVALSHA, falling back to EVAL when the server does not know it yet)."""
    return redis.register_script(source(name))


async def run_many(redis: Redis, name: str, calls: Sequence[tuple[Sequence[str], Sequence[Any]]]) -> list[Any]:
    """Run one script once per (keys, args) in a single pipelined round trip, in order.

    Calls EVALSHA directly (the per-call wrapper costs more than the script on hot paths); when the
    server does not know the script yet, loads it and runs the whole pipeline again, which is safe
    because every EVALSHA of an unknown script failed without running.
    """
    sha = digest(name)
    for _ in range(2):
        async with redis.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.execute_command("EVALSHA", sha, len(keys), *keys, *args)
            try:
                return list(await pipe.execute())
            except NoScriptError:
                await redis.script_load(source(name))
    raise RuntimeError(f"script {name} could not be loaded")
