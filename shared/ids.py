"""Identifiers: a short type prefix and a ULID, so ids are unique and sort by creation time."""

from __future__ import annotations

from ulid import ULID


def new_id(prefix: str) -> str:
    return f"{prefix}_{str(ULID()).lower()}"


def new_event_id() -> str:
    return new_id("evt")
