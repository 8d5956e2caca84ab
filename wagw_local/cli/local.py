"""`wagw run` (the whole system on this machine) and `wagw receive` (a local webhook receiver)."""

from __future__ import annotations

import json
import signal
import threading
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from wagw_local.cli import app
from wagw_local.receiver import ReceivedEvent, Receiver, ReceiverState
from wagw_local.system import LocalSystem, SystemOptions, publish_environment, withdraw_environment

console = Console()


def print_event(event: ReceivedEvent) -> None:
    body = event.body
    data = json.dumps(body.get("data", {}), ensure_ascii=False)
    console.print(
        f"[green]webhook[/] {body.get('type', '?'):<18} session={body.get('session_id', '?')} "
        f"id={event.webhook_id} [dim]{data[:160]}[/]"
    )


def wait_for_interrupt() -> None:
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()


@app.command()
def run(
    real: Annotated[bool, typer.Option("--real", help="drive web.whatsapp.com instead of the simulator")] = False,
    workers: Annotated[int, typer.Option(help="session workers to start")] = 2,
    auth_strategy: Annotated[str, typer.Option(help="profile or context")] = "profile",
) -> None:
    """Run the whole system locally; Ctrl-C stops everything it started."""
    system = LocalSystem(SystemOptions(workers=workers, real_whatsapp=real, auth_strategy=auth_strategy))
    system.receiver_state.on_event = print_event
    try:
        with console.status("starting Redis, LocalStack, apps, workers ..."):
            system.start()
            demo = system.create_demo_tenant()
            publish_environment(system)
        table = Table(title="wa-gateway is running", show_header=False)
        table.add_row("Console", f"{system.api_url}/console")
        table.add_row("API (OpenAPI)", f"{system.api_url}/docs")
        table.add_row("Ingest", system.ingest_url)
        table.add_row("Demo workspace", demo.workspace_id)
        table.add_row("Demo API key", demo.api_key)
        table.add_row("Webhook receiver", system.receiver.url)
        if not real:
            table.add_row("WhatsApp simulator", system.simulator_url)
        table.add_row("Redis", system.options.redis_url or "")
        table.add_row("LocalStack", system.options.aws_endpoint_url or "")
        table.add_row("Logs", str(system.options.workdir))
        console.print(table)
        console.print("In another terminal, `.venv/bin/wagw status` (or redrive, keys, cleanup) operates on it.")
        console.print("Events delivered to the receiver appear below. Ctrl-C stops everything.")
        wait_for_interrupt()
    finally:
        withdraw_environment()
        with console.status("stopping ..."):
            system.stop()
        console.print("stopped.")


@app.command()
def receive(
    secret: Annotated[list[str], typer.Option(help="endpoint secret(s) (whsec_...) to verify with")],
    port: Annotated[int, typer.Option(help="port to listen on (127.0.0.1)")] = 8083,
) -> None:
    """Run a local webhook receiver that verifies signatures and prints each event."""
    state = ReceiverState(secrets={f"secret{i}": s for i, s in enumerate(secret)}, on_event=print_event)
    receiver = Receiver(state, port)
    receiver.start()
    console.print(f"receiving on {receiver.url}; Ctrl-C stops")
    try:
        wait_for_interrupt()
    finally:
        receiver.stop()
