"""docs/events.md quotes the example events under tests/fixtures/events/examples/, and those are canonical: each
parses with shared.events.parse_event and serialises back to exactly itself. A model change (a field added,
renamed, or a new default) breaks the round trip here until the examples and the docs show it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from shared.events import EVENT_TYPES, event_to_dict, parse_event

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "tests" / "fixtures" / "events" / "examples"
DOC = ROOT / "docs" / "events.md"
# An example block in the docs: a marker naming the file, then the fenced JSON.
QUOTED = re.compile(r"<!-- example: (?P<name>[a-z_]+) -->\s*```json\n(?P<body>.*?)\n```", re.DOTALL)


def examples() -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(EXAMPLES.glob("*.json"))}


@pytest.mark.parametrize("name", sorted(examples()))
def test_an_example_is_a_canonical_event(name: str) -> None:
    # Given an example file
    raw = examples()[name]
    # When it is parsed with the producers' and ingest's models and serialised again
    again = event_to_dict(parse_event(raw))
    # Then nothing was added, dropped or changed
    assert again == raw


def test_every_event_type_has_an_example() -> None:
    assert {e["type"] for e in examples().values()} == set(EVENT_TYPES)


def test_the_docs_quote_every_example_exactly() -> None:
    # Given docs/events.md
    text = DOC.read_text()
    # When its example blocks are read
    quoted = {m["name"]: json.loads(m["body"]) for m in QUOTED.finditer(text)}
    # Then they are exactly the example files, each once, and no other JSON block looks like an event
    assert quoted == examples()
    assert text.count("<!-- example: ") == len(quoted)
