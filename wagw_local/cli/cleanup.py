"""`wagw cleanup [--dry-run]`: run the cleanup (or show what it would do) against local or real Redis."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from shared.settings import get_settings
from wagw_local.cli import app


@app.command()
def cleanup(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what a run would do; write nothing.")] = False,
    redis_url: Annotated[str | None, typer.Option(help="Redis to clean (default: WAGW_REDIS_URL / settings).")] = None,
    max_sessions: Annotated[
        int | None, typer.Option(min=1, help="Sessions to scan at most (default: cleanup_max_sessions_per_run).")
    ] = None,
    s3: Annotated[bool, typer.Option(help="Also check auth archives in S3 (settings.auth_bucket).")] = True,
    show: Annotated[int, typer.Option(min=0, help="List up to this many actions.")] = 50,
) -> None:
    """Retire duplicate sessions, stop stale QR waits, delete long-disconnected sessions and orphaned archives."""
    from functions.cleanup.logic import RunOptions, run_cleanup
    from functions.cleanup.models import CleanupResult
    from shared.redis_client import close_redis, get_redis

    if redis_url:
        import os

        os.environ["WAGW_REDIS_URL"] = redis_url
        get_settings.cache_clear()
    settings = get_settings()
    console = Console()

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("scanning sessions", total=None)

        def advance(scanned: int, total: int) -> None:
            progress.update(task, completed=scanned, total=max(total, scanned))

        async def run() -> CleanupResult:
            try:
                options = RunOptions(
                    dry_run=dry_run,
                    max_sessions=max_sessions,
                    s3_enabled=None if s3 else False,
                    keep_actions=show,
                    progress=advance,
                )
                return await run_cleanup(get_redis(), settings, options)
            finally:
                await close_redis()

        result = asyncio.run(run())

    if result.skipped:
        console.print(f"[yellow]Skipped:[/] another cleanup run holds the lock ({result.skipped_reason}).")
        raise typer.Exit(code=1)
    verb = "would" if result.dry_run else "did"
    title = f"Cleanup ({'dry run' if result.dry_run else 'applied'}): {verb} change"
    counts = Table(title=title)
    counts.add_column("rule")
    counts.add_column("count", justify="right")
    for rule, count in result.counts.items():
        counts.add_row(rule, str(count), style="bold" if count else "dim")
    console.print(counts)
    if result.actions:
        actions = Table(title=f"Actions (first {len(result.actions)})")
        for column in ("rule", "session / key", "workspace", "detail"):
            actions.add_column(column)
        for action in result.actions:
            actions.add_row(action.rule.value, action.session_id, action.workspace_id, action.detail)
        console.print(actions)
    state = "complete" if result.pass_complete else "partial (the next run resumes)"
    console.print(
        f"scanned {result.scanned} sessions ({state}) at {result.sessions_per_second:,.0f}/s; "
        f"events emitted {result.events_emitted}, pending {result.events_pending}; errors {result.errors}; "
        f"{result.duration_ms} ms"
    )
