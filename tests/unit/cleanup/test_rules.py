"""Cleanup's decisions for one session, without Redis or a clock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

from functions.cleanup.handler import metric_name
from functions.cleanup.rules import (
    Limits,
    Rule,
    SessionView,
    decide,
    pick_duplicates,
    s3_key_session_candidates,
    timed_since,
)

MINUTE = 60_000
NOW = 10_000 * MINUTE
LIMITS = Limits(
    qr_timeout_ms=30 * MINUTE, disconnected_delete_after_ms=24 * 60 * MINUTE, tombstone_retention_ms=7 * 1440 * MINUTE
)


def view(status: str, at: int, **fields: object) -> SessionView:
    return SessionView(
        id=str(fields.pop("id", "s")), exists=True, workspace_id="1", status=status, status_at_ms=str(at), **fields
    )  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "age_minutes", "rule"),
    [
        ("qr", 29, None),
        ("qr", 31, Rule.QR_TIMEOUT),
        ("pairing", 31, Rule.QR_TIMEOUT),
        ("disconnected", 23 * 60, None),
        ("disconnected", 25 * 60, Rule.DISCONNECTED_DELETED),
        ("ready", 100 * 60, None),
        ("starting", 100 * 60, None),
        ("failed", 100 * 60, None),
    ],
)
def test_status_rules_follow_the_thresholds(status: str, age_minutes: int, rule: Rule | None) -> None:
    # Given a session in `status` since `age_minutes`; When cleanup decides; Then the rule is as expected
    assert decide(view(status, NOW - age_minutes * MINUTE), NOW, LIMITS).rule is rule


def test_a_missing_hash_is_an_orphan_index_entry() -> None:
    missing = SessionView.from_row("s", [None] * 8)
    assert not missing.exists and decide(missing, NOW, LIMITS).rule is Rule.ORPHAN_INDEX_ENTRY


def test_tombstones_are_purged_only_after_retention() -> None:
    young = view("stopped", 0, deleted_at_ms=str(NOW - 6 * 1440 * MINUTE))
    old = view("stopped", 0, deleted_at_ms=str(NOW - 8 * 1440 * MINUTE))
    assert decide(young, NOW, LIMITS).rule is None
    assert decide(old, NOW, LIMITS).rule is Rule.TOMBSTONE_PURGED


def test_deleted_and_terminal_sessions_are_not_checked_for_lease_or_phone() -> None:
    for session in (
        view("failed", NOW, owner="w", phone="1"),
        view("disconnected", NOW, owner="w", phone="1", deleted_at_ms=str(NOW)),
    ):
        decision = decide(session, NOW, LIMITS)
        assert not decision.check_lease and not decision.check_phone


def test_live_owned_sessions_are_checked_for_their_lease_and_phone() -> None:
    decision = decide(view("ready", NOW, owner="w", phone="1"), NOW, LIMITS)
    assert decision.check_lease and decision.check_phone and decision.rule is None


def test_the_first_sight_of_a_wait_is_remembered_and_counts() -> None:
    # Given a QR wait cleanup first saw 40 minutes ago, whose QR was refreshed a minute ago
    session = view("qr", NOW - MINUTE, cleanup_since=f"qr:{NOW - 40 * MINUTE}")
    # Then the wait counts from the first sight, and it timed out
    assert timed_since(session) == NOW - 40 * MINUTE
    assert decide(session, NOW, LIMITS).rule is Rule.QR_TIMEOUT


def test_a_marker_of_another_status_is_ignored() -> None:
    # Given a QR wait of one minute with an old marker left from a disconnect
    session = view("qr", NOW - MINUTE, cleanup_since=f"disconnected:{NOW - 99 * MINUTE}")
    # Then the wait counts from the QR status only
    assert timed_since(session) == NOW - MINUTE and decide(session, NOW, LIMITS).rule is None


def test_the_newest_ready_session_of_a_phone_stays_and_the_other_live_ones_retire() -> None:
    # Given two ready sessions (one older), a qr, a disconnected and a failed one of the same phone
    sessions = [
        view("ready", NOW - 60 * MINUTE, id="ready-old"),
        view("ready", NOW - 5 * MINUTE, id="ready-new"),
        view("qr", NOW, id="qr"),
        view("disconnected", NOW, id="disc"),
        view("failed", NOW, id="failed"),
    ]
    # When duplicates are picked, with `qr` already changed by another rule
    winner, losers = pick_duplicates(sessions, exclude=frozenset({"qr"}))
    # Then the newest ready one stays and the other live ones retire
    assert winner is not None and winner.id == "ready-new"
    assert [s.id for s in losers] == ["disc", "ready-old"]


def test_without_a_ready_session_no_duplicate_is_retired() -> None:
    assert pick_duplicates([view("qr", NOW, id="a"), view("disconnected", NOW, id="b")]) == (None, [])


def test_every_cut_of_an_archive_key_is_a_candidate_session_id() -> None:
    assert s3_key_session_candidates("auth/ses_01h.tar.zst", "auth/") == {
        "ses",
        "ses_01h",
        "ses_01h.tar",
        "ses_01h.tar.zst",
    }
    assert "a.b" in s3_key_session_candidates("auth/a.b/profile", "auth/")


def test_metric_names_are_pascal_case() -> None:
    assert metric_name("qr_timed_out") == "CleanupQrTimedOut"


def test_the_canonical_scheduled_event_parses() -> None:
    raw = json.loads((Path(__file__).parent / "scheduled_event.json").read_text())
    parsed = parse(event=raw, model=EventBridgeModel)
    assert parsed.detail_type == "Scheduled Event" and parsed.source == "aws.events"
