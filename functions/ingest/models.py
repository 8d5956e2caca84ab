"""Ingest's input model; the response models are shared with producers (shared.producer)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from shared.events import Event

MAX_EVENTS_PER_BATCH = 100


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[Event] = Field(min_length=1, max_length=MAX_EVENTS_PER_BATCH)
