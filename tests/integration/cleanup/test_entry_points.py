"""The Lambda handler (fed a real EventBridge scheduled event) and `wagw cleanup`, against a real Redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from typer.testing import CliRunner

from functions.cleanup import handler as cleanup_handler
from shared import producer
from shared import redis_keys as keys
from shared.events import Event, SessionStatus
from shared.store.records import now_ms
from tests.integration.cleanup.helpers import DAY, HOUR, make_session
from wagw_local.cli import app

SCHEDULED_EVENT = Path(__file__).parents[2] / "unit" / "cleanup" / "scheduled_event.json"
PHONE = "62811801641"


@dataclass
class LambdaContext:
    function_name: str = "wagw-cleanup"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:wagw-cleanup"
    aws_request_id: str = "5b3e0e9c-0000-4000-8000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


async def _old_system_case(redis: Redis) -> None:
    now = now_ms()
    await make_session(redis, "scanning", SessionStatus.QR, at=now - 4 * DAY, phone=PHONE)
    await make_session(redis, "disconnected", SessionStatus.DISCONNECTED, at=now - 2 * HOUR, phone=PHONE)
    await make_session(redis, "connected", SessionStatus.READY, at=now - HOUR, phone=PHONE)


async def test_the_scheduled_handler_cleans_and_posts_events_through_the_producer(
    redis: Redis, env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the old system's case, ingest reached through shared.producer, and metrics on (as in Lambda)
    await _old_system_case(redis)
    env.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    posted: list[Event] = []

    async def post_events(events: Sequence[Event], **_: Any) -> None:
        posted.extend(events)

    env.setattr(producer, "post_events", post_events)
    event = json.loads(SCHEDULED_EVENT.read_text())

    # When EventBridge's scheduled event invokes the handler
    result = await asyncio.to_thread(cleanup_handler.handler, event, LambdaContext())

    # Then the result is a plain dict with the counts, and the events went to ingest
    assert result["counts"]["qr_timed_out"] == 1 and result["counts"]["duplicates_retired"] == 1
    assert result["events_emitted"] == 2 and result["skipped"] is False
    assert sorted(e.session_id for e in posted) == ["disconnected", "scanning"]
    assert await redis.smembers(keys.workspace_phone_sessions("1", PHONE)) == {"connected"}
    # And the counts per rule went out as CloudWatch metrics (EMF)
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert emf and emf[-1]["CleanupQrTimedOut"] == [1.0] and emf[-1]["CleanupDuplicatesRetired"] == [1.0]


async def test_wagw_cleanup_dry_run_shows_the_plan_then_the_real_run_applies_it(
    redis: Redis, env: pytest.MonkeyPatch
) -> None:
    # Given the old system's case, and ingest reached through shared.producer
    await _old_system_case(redis)
    posted: list[Event] = []

    async def post_events(events: Sequence[Event], **_: Any) -> None:
        posted.extend(events)

    env.setattr(producer, "post_events", post_events)
    runner = CliRunner()
    # (typer runs a lone command without its name; `wagw` has more once every area registered its own)
    command = ["cleanup"] if len(app.registered_commands) > 1 else []

    # When the operator runs `wagw cleanup --dry-run`
    dry = await asyncio.to_thread(runner.invoke, app, [*command, "--dry-run", "--no-s3"])

    # Then it shows what would change, and changes nothing
    assert dry.exit_code == 0, dry.output
    assert "dry run" in dry.output and "scanning" in dry.output and "disconnected" in dry.output
    assert await redis.hget(keys.session("scanning"), "status") == "qr" and posted == []

    # When the operator runs `wagw cleanup`
    real = await asyncio.to_thread(runner.invoke, app, [*command, "--no-s3"])

    # Then it applies it
    assert real.exit_code == 0, real.output
    assert "applied" in real.output
    assert await redis.smembers(keys.workspace_phone_sessions("1", PHONE)) == {"connected"}
    assert len(posted) == 2
