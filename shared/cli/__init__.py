"""`wagw`, the operator's command line. Each area registers its commands in a module of this package."""

from __future__ import annotations

import importlib
import pkgutil

import typer

app = typer.Typer(help="wa-gateway operator commands.", no_args_is_help=True, add_completion=False)


def _register_commands() -> None:
    """Import every sibling module; each adds its commands to `app`."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


_register_commands()
