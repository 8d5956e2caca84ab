"""Ingest counts the sessions it records as `failed`: the metric the SessionsFailed alarm watches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shared.observability import metrics
from tests.conftest import Queues
from tests.fixtures import load_event
from tests.integration.ingest.conftest import signed


@pytest.fixture
def recorded_metrics(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Powertools metrics switched on for one test (the suite turns them off), buffer cleared afterwards."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    metrics.clear_metrics()
    try:
        yield metrics.metric_set
    finally:
        metrics.clear_metrics()


async def test_a_session_recorded_as_failed_is_counted(
    client: httpx.AsyncClient, queues: Queues, recorded_metrics: dict[str, Any]
) -> None:
    # Given a worker's session.status events: one session fails, another becomes ready
    failed = {**load_event("session_status_ready"), "id": "evt_01jd00000000000000000000f1"}
    failed["data"] = {"status": "failed", "reason": "crash_loop:page"}
    ready = load_event("session_status_ready")
    # When ingest records them
    response = await client.post("/v1/events", **signed([failed]))
    assert [r["outcome"] for r in response.json()["results"]] == ["accepted"]
    await client.post("/v1/events", **signed([ready]))
    # Then exactly one failure is counted
    assert recorded_metrics["sessions_failed"]["Value"] == [1.0]
