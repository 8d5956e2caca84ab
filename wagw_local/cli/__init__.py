"""`wagw`, the operator's command line. Each area registers its commands in a module of this package."""

from __future__ import annotations

import importlib
import pkgutil

import typer

app = typer.Typer(help="wa-gateway operator commands.", no_args_is_help=True, add_completion=False)
# Commands that start things of their own rather than operate on a running system.
_STANDALONE = {"run", "receive"}


@app.callback()
def _target(ctx: typer.Context) -> None:
    """Operate on the system `make run` started, unless WAGW_REDIS_URL / AWS_ENDPOINT_URL point elsewhere."""
    from wagw_local.system import RUNNING_ENVIRONMENT, adopt_running_environment

    if ctx.invoked_subcommand not in _STANDALONE and adopt_running_environment():
        typer.echo(f"using the local system started by `make run` ({RUNNING_ENVIRONMENT})", err=True)


def _register_commands() -> None:
    """Import every sibling module; each adds its commands to `app`."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


_register_commands()
