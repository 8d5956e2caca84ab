"""The ingest stand-in's reads: by type, by session, both or neither, in arrival order, each event once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from session_workers.simulator.ingest_stub import IngestStub
from shared.signing import generate_secret, sign

KEYS = {"worker": generate_secret()}


@pytest.fixture
def stub() -> Iterator[IngestStub]:
    stub = IngestStub(keys=KEYS)  # never started: events go in through its answer, no socket is used
    yield stub
    stub.server.server_close()


def post(stub: IngestStub, events: list[dict[str, Any]]) -> int:
    body = json.dumps({"events": events}).encode()
    headers = sign(KEYS.values(), "batch-" + events[0]["id"], body).as_dict()
    status, _payload, _headers = stub._answer(headers, body)
    return status


def event(n: int, type_: str, session: str, status: str | None = None) -> dict[str, Any]:
    return {"id": f"evt_{n}", "type": type_, "session_id": session, "data": {"status": status} if status else {}}


def test_reads_by_type_and_session_match_a_scan_of_every_event_in_arrival_order(stub: IngestStub) -> None:
    # Given events of two types for two sessions, interleaved, one of them sent twice
    events = [
        event(1, "session.status", "s1", "starting"),
        event(2, "message.received", "s1"),
        event(3, "session.status", "s2", "starting"),
        event(4, "session.status", "s1", "ready"),
        event(5, "message.received", "s2"),
    ]
    assert post(stub, events[:3]) == 200
    assert post(stub, [*events[3:], events[0]]) == 200

    # When they are read by type and session, by type, by session and all at once
    # Then each read holds what a filter over every event holds, in the order they arrived, the repeat not again
    for type_ in ("session.status", "message.received", "call.received", None):
        for session in ("s1", "s2", "s3", None):
            expected = [
                e["id"]
                for e in events
                if (type_ is None or e["type"] == type_) and (session is None or e["session_id"] == session)
            ]
            assert [e["id"] for e in stub.select(type_, session)] == expected, (type_, session)
    assert stub.statuses("s1") == ["starting", "ready"]
    assert stub.seen["evt_1"] == 2


def test_a_read_is_a_copy_that_later_events_do_not_change(stub: IngestStub) -> None:
    # Given a read of one session's statuses
    post(stub, [event(1, "session.status", "s1", "starting")])
    before = stub.select("session.status", "s1")

    # When another status arrives
    post(stub, [event(2, "session.status", "s1", "ready")])

    # Then the earlier read still holds one event and a new read holds both
    assert [e["id"] for e in before] == ["evt_1"]
    assert [e["id"] for e in stub.select("session.status", "s1")] == ["evt_1", "evt_2"]
