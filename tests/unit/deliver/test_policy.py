"""Retry policy: what each status means, the schedule, jitter and Retry-After."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from shared.delivery import policy
from shared.delivery.policy import Verdict

SCHEDULE = [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.DELIVERED),
        (204, Verdict.DELIVERED),
        (None, Verdict.RETRY),
        (301, Verdict.RETRY),
        (408, Verdict.RETRY),
        (429, Verdict.RETRY),
        (500, Verdict.RETRY),
        (503, Verdict.RETRY),
        (400, Verdict.DEAD),
        (401, Verdict.DEAD),
        (404, Verdict.DEAD),
        (422, Verdict.DEAD),
        (410, Verdict.DISABLE),
    ],
)
def test_status_classification(status: int | None, verdict: Verdict) -> None:
    assert policy.classify(status) is verdict


def test_the_default_schedule_gives_ten_attempts() -> None:
    # Given the default schedule, when attempts 1..9 fail there is a next delay; after attempt 10 there is none
    delays = [policy.next_delay(n, 1, SCHEDULE, jitter=0) for n in range(1, 11)]
    assert delays == [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400, None]


def test_a_redriven_budget_starts_again() -> None:
    # Given a delivery redriven at attempt 11 (budget_start 11), its 11th attempt failing waits the first step
    assert policy.next_delay(11, 11, SCHEDULE, jitter=0) == 5
    assert policy.next_delay(20, 11, SCHEDULE, jitter=0) is None


def test_jitter_stays_within_twenty_percent() -> None:
    rng = random.Random(7)
    delays = [policy.next_delay(2, 1, SCHEDULE, jitter=0.2, rng=rng) for _ in range(500)]
    assert all(d is not None and 240 <= d <= 360 for d in delays)
    assert len({round(d or 0) for d in delays}) > 50  # actually spread, not constant


def test_retry_after_is_honoured_only_when_longer_and_capped() -> None:
    assert policy.next_delay(1, 1, SCHEDULE, jitter=0, retry_after=60) == 60
    assert policy.next_delay(2, 1, SCHEDULE, jitter=0, retry_after=60) == 300
    assert policy.next_delay(1, 1, SCHEDULE, jitter=0, retry_after=10**9, retry_after_max=3600) == 3600


def test_retry_after_parses_seconds_and_http_dates() -> None:
    now = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
    assert policy.parse_retry_after("120", now) == 120
    assert policy.parse_retry_after("Fri, 27 Nov 2026 12:02:00 GMT", now) == 120
    assert policy.parse_retry_after("soon", now) is None
    assert policy.parse_retry_after(None, now) is None


def test_up_to_fifteen_minutes_goes_on_the_queue() -> None:
    assert policy.goes_on_queue(900) is True
    assert policy.goes_on_queue(900.5) is False


def test_a_requeue_after_a_redis_outage_waits_out_the_attempt_lease_then_backs_off_to_five_minutes() -> None:
    from functions.deliver.logic import outage_requeue_delay
    from shared.delivery.queue import DeliveryMessage
    from shared.delivery.store import lease_ms

    # Given a delivery put back 0, 1, ... 20 times because Redis did not answer
    message = DeliveryMessage(delivery_id="dlv_1", workspace_id="ws_1", endpoint_id="ep_1", event={"id": "evt_1"})
    delays = [outage_requeue_delay(message.model_copy(update={"outage_requeues": n})) for n in range(21)]
    # Then each copy comes back only after a lease that an interrupted attempt may still hold has lapsed,
    # the delays never shrink, and they stop growing at five minutes (well inside SQS's 15-minute cap)
    assert min(delays) > lease_ms() / 1000
    assert delays == sorted(delays)
    assert delays[-1] == 300
