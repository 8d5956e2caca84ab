"""The event spool: order, what a restarted worker finds, the disk bound, fact/state kinds."""

from __future__ import annotations

from pathlib import Path

from session_workers.spool import EventSpool


def test_events_come_back_in_order_and_the_file_starts_afresh_once_all_are_written(tmp_path: Path) -> None:
    # Given three events of two sessions spooled
    spool = EventSpool(tmp_path / "w.jsonl")
    for index, session_id in enumerate(["s1", "s2", "s1"]):
        spool.add(session_id, 7, "message.received", f'{{"n": {index}}}')
    assert spool.holds("s1") and spool.holds("s2") and len(spool) == 3
    # When the oldest two are written, then the last
    first, offset = spool.peek(2)
    spool.done(first, offset)
    rest, offset = spool.peek(10)
    spool.done(rest, offset)
    # Then they came in order, and nothing is left, on disk either
    assert [e.event_json for e in first + rest] == ['{"n": 0}', '{"n": 1}', '{"n": 2}']
    assert not spool and not spool.holds("s1")
    assert (tmp_path / "w.jsonl").read_bytes() == b""


def test_a_restarted_worker_finds_what_its_predecessor_spooled(tmp_path: Path) -> None:
    # Given a spool with one event written out and one not, then the process dies
    before = EventSpool(tmp_path / "w.jsonl")
    before.add("s1", 3, "message.received", '{"n": 1}')
    before.add("s1", 3, "session.status", '{"n": 2}')
    written, offset = before.peek(1)
    before.add("s1", 3, "message.ack", '{"n": 3}')
    # When a worker with the same id starts
    after = EventSpool(tmp_path / "w.jsonl")
    # Then it has every event not confirmed written (a repeat is dropped at ingest by event id)
    entries, _ = after.peek(10)
    assert [(e.kind, e.event_json) for e in entries] == [
        ("fact", '{"n": 1}'),
        ("state", '{"n": 2}'),
        ("fact", '{"n": 3}'),
    ]
    assert written[0].fence == 3 and offset > 0


def test_the_spool_refuses_events_beyond_its_disk_bound(tmp_path: Path) -> None:
    spool = EventSpool(tmp_path / "w.jsonl", max_bytes=250)
    accepted = [spool.add("s1", 1, "message.received", '{"body": "' + "x" * 60 + '"}') for _ in range(3)]
    assert accepted == [True, True, False]
    assert spool.refused == 1 and len(spool) == 2
