"""Operator commands against local or real Redis and SQS: `status`, `redrive`, `keys`."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Annotated

import httpx
import typer
from redis.asyncio import Redis
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from shared import aws
from shared import redis_keys as keys
from shared.redis_client import redis_password
from shared.settings import get_settings
from wagw_local.cli import app

console = Console()
SCAN_PAGE = 1000


async def session_counts(redis: Redis, progress: Progress) -> Counter[str]:
    total = await redis.zcard(keys.sessions_index())
    task = progress.add_task("sessions", total=total)
    counts: Counter[str] = Counter()
    for start in range(0, total, SCAN_PAGE):
        ids = await redis.zrange(keys.sessions_index(), start, start + SCAN_PAGE - 1)
        async with redis.pipeline(transaction=False) as pipe:
            for session_id in ids:
                pipe.hmget(keys.session(session_id), "status", "deleted_at_ms")
            rows = await pipe.execute()
        counts.update("deleted" if deleted else (status or "missing") for status, deleted in rows)
        progress.advance(task, len(ids))
    return counts


async def worker_rows(redis: Redis) -> list[tuple[str, float, int, int]]:
    now = time.time()
    rows = []
    for worker_id, beat_ms in await redis.zrange(keys.workers(), 0, -1, withscores=True):
        owned = await redis.scard(keys.worker_sessions(worker_id))
        outbox = await redis.xlen(keys.outbox(worker_id))
        rows.append((str(worker_id), now - float(beat_ms) / 1000, int(owned), int(outbox)))
    return rows


def queue_depth(url: str) -> tuple[int, int]:
    attributes = aws.sqs().get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


async def _status() -> None:
    redis = Redis.from_url(get_settings().redis_url, decode_responses=True, password=redis_password())
    try:
        with Progress(console=console, transient=True) as progress:
            counts = await session_counts(redis, progress)
        workers = await worker_rows(redis)
        retry_waiting = await redis.zcard(keys.retry_schedule())
    finally:
        await redis.aclose()
    sessions = Table(title="Sessions by status")
    sessions.add_column("status")
    sessions.add_column("count", justify="right")
    for status, count in sorted(counts.items()):
        sessions.add_row(status, str(count))
    console.print(sessions)
    queues = Table(title="Queues")
    for column in ("queue", "visible", "in flight"):
        queues.add_column(column)
    for name, url in (("deliveries", aws.deliveries_queue_url()), ("dead letters", aws.deliveries_dlq_url())):
        visible, in_flight = queue_depth(url)
        queues.add_row(name, str(visible), str(in_flight))
    queues.add_row("retries waiting (Redis)", str(retry_waiting), "-")
    console.print(queues)
    table = Table(title="Workers")
    for column in ("worker", "last heartbeat", "sessions", "outbox"):
        table.add_column(column)
    for worker_id, age, owned, outbox in workers:
        table.add_row(worker_id, f"{age:.1f}s ago", str(owned), str(outbox))
    console.print(table)


@app.command()
def status() -> None:
    """Sessions by state, queue and DLQ depth, retries waiting, workers and their outbox depth."""
    asyncio.run(_status())


@app.command()
def redrive(
    wait: Annotated[bool, typer.Option(help="follow the move until it finishes")] = True,
) -> None:
    """Move every DLQ message back to the deliveries queue (the console's "Start DLQ redrive")."""
    sqs = aws.sqs()
    dlq_arn = aws.queue_arn(aws.deliveries_dlq_url())
    queue_arn = aws.queue_arn(aws.deliveries_queue_url())
    waiting, _ = queue_depth(aws.deliveries_dlq_url())
    if waiting == 0:
        console.print("the DLQ is empty: nothing to redrive")
        return
    handle = sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=queue_arn)["TaskHandle"]
    console.print(f"redriving about {waiting} messages (task {handle[:24]}...)")
    if not wait:
        return
    with Progress(console=console) as progress:
        task = progress.add_task("moved", total=waiting)
        while True:
            tasks = sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=1).get("Results", [])
            current = tasks[0] if tasks else {}
            progress.update(task, completed=int(current.get("ApproximateNumberOfMessagesMoved", 0)))
            if current.get("Status") in ("COMPLETED", "FAILED", "CANCELLED"):
                break
            time.sleep(0.5)
    moved = current.get("ApproximateNumberOfMessagesMoved", 0)
    console.print(f"redrive {current.get('Status', 'unknown').lower()}: {moved} moved")
    if current.get("Status") != "COMPLETED":
        raise typer.Exit(1)


@app.command("keys")
def create_key(
    workspace: Annotated[str | None, typer.Option(help="existing workspace id (default: create one)")] = None,
    name: Annotated[str, typer.Option(help="workspace name when creating one")] = "My workspace",
    scopes: Annotated[list[str] | None, typer.Option("--scope", help="read, send, manage (default: all)")] = None,
    api_url: Annotated[str, typer.Option(help="the API's base URL", envvar="WAGW_API_URL")] = "http://127.0.0.1:8080",
) -> None:
    """Create a workspace API key through the admin API (and the workspace, unless given)."""
    admin = {"Authorization": f"Bearer {get_settings().admin_api_key.get_secret_value()}"}
    with httpx.Client(base_url=api_url, headers=admin, timeout=30) as http:
        if workspace is None:
            created = http.post("/v1/admin/workspaces", json={"name": name})
            _fail_unless_ok(created)
            workspace = str(created.json()["id"])
            console.print(f"workspace [bold]{workspace}[/] created")
        chosen = scopes or ["read", "send", "manage"]
        key = http.post(f"/v1/admin/workspaces/{workspace}/keys", json={"name": "cli", "scopes": chosen})
        _fail_unless_ok(key)
    console.print(f"API key for {workspace} (shown once): [bold]{key.json()['key']}[/]")


def _fail_unless_ok(response: httpx.Response) -> None:
    if response.status_code >= 400:
        console.print(f"[red]{response.status_code}[/] {response.text}")
        raise typer.Exit(1)
