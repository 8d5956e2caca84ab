"""What to do after an attempt: pure functions (no I/O), so every rule is unit-tested on its own.

- 2xx: delivered.
- timeout, connection error, 408, 429, 3xx, 5xx: retry on the schedule (jittered), or later if Retry-After asks.
- 410: dead-letter and disable the endpoint. Any other 4xx: dead-letter at once.
- Attempts exhausted (the budget is `len(schedule) + 1` attempts from `budget_start`): dead-letter.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum

from shared.topology import MAX_SQS_DELAY_SECONDS


class Verdict(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    DEAD = "dead"
    DISABLE = "disable"  # dead-letter and disable the endpoint (410 Gone)


class Reason(StrEnum):
    """Why a delivery was dead-lettered (the DLQ message's `reason` attribute)."""

    REJECTED = "rejected"  # non-retryable 4xx
    GONE = "gone"  # 410: endpoint disabled
    EXHAUSTED = "attempts_exhausted"
    UNSAFE_URL = "unsafe_url"
    ENDPOINT_DISABLED = "endpoint_disabled"


RETRYABLE_4XX = frozenset({408, 429})


def classify(status: int | None) -> Verdict:
    """`status` None means no response at all (timeout, connection refused, reset)."""
    if status is None:
        return Verdict.RETRY
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status == 410:
        return Verdict.DISABLE
    if 400 <= status < 500 and status not in RETRYABLE_4XX:
        return Verdict.DEAD
    return Verdict.RETRY


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds asked for by a Retry-After header (delta-seconds or an HTTP date); None when absent or bad."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def retries_left(attempt: int, budget_start: int, schedule: Sequence[int]) -> int:
    """Retries still allowed after attempt number `attempt` failed."""
    return max(0, len(schedule) - (attempt - budget_start))


def jittered(seconds: float, jitter: float, rng: random.Random | None = None) -> float:
    spread = (rng or random).uniform(1 - jitter, 1 + jitter)
    return max(0.0, seconds * spread)


def next_delay(
    attempt: int,
    budget_start: int,
    schedule: Sequence[int],
    jitter: float,
    retry_after: float | None = None,
    retry_after_max: float = 24 * 3600,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds to wait before the next attempt after attempt `attempt` failed, or None when exhausted."""
    if retries_left(attempt, budget_start, schedule) <= 0:
        return None
    delay = jittered(float(schedule[attempt - budget_start]), jitter, rng)
    if retry_after is not None:
        delay = max(delay, min(retry_after, retry_after_max))
    return delay


def goes_on_queue(delay_seconds: float) -> bool:
    """SQS DelaySeconds covers up to 15 minutes; anything longer waits in the Redis retry schedule."""
    return delay_seconds <= MAX_SQS_DELAY_SECONDS
