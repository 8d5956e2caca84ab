"""Schema errors name the field the producer got wrong, in the producer's terms."""

from __future__ import annotations

import json

import pytest

from functions.ingest.errors import InvalidBatch
from functions.ingest.logic import _parse
from tests.fixtures import load_event


def batch(*events: dict) -> bytes:
    return json.dumps({"events": list(events)}).encode()


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda e: e["data"].update(state="dancing"), "events[0].data.state"),
        (lambda e: e.update(occurred_at="yesterday"), "events[0].occurred_at"),
        (lambda e: e.update(session_id="has spaces"), "events[0].session_id"),
    ],
)
def test_error_names_the_field(mutate, field: str) -> None:
    event = load_event("typing")
    mutate(event)
    with pytest.raises(InvalidBatch) as caught:
        _parse(batch(event))
    assert caught.value.extra["errors"][0]["field"] == field
    assert caught.value.detail.startswith(field + ":")


def test_body_that_is_not_an_object() -> None:
    with pytest.raises(InvalidBatch, match=r"^body: Input should be a valid dictionary"):
        _parse(b"[1, 2]")
