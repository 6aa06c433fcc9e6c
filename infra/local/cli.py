"""`movieaugur stack up|down|status` (also `python -m infra.local ...`).

A typer sub-application so the main CLI can mount it with `app.add_typer(stack_app, name="stack")`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import NoReturn

import typer

from .config import ENV_DEFAULTS
from .proc import StackError
from .stack import Stack

#: What runs after `up` has started the components: MovieAugur's CLI installs one that creates its
#: topics and registers its Connect sinks (this package knows nothing of MovieAugur's code), and
#: returns lines to print.
AfterUp = Callable[[Stack], list[str]]

app = typer.Typer(
    help="Run the local infrastructure (Kafka KRaft, Kafka Connect + MongoDB sink, FerretDB on PostgreSQL, "
         "Redis, NGINX gateway) without Docker. State lives in $MOVIEAUGUR_STACK_DIR (default <repo>/.stack).",
    no_args_is_help=True,
)
_after_up: list[AfterUp] = []


def on_up(hook: AfterUp) -> None:
    """Run `hook` after every successful `up`."""
    _after_up.append(hook)


def _fail(exc: StackError) -> NoReturn:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


@app.command()
def up(brokers: int = typer.Option(0, "--brokers", min=0, help="KRaft nodes (combined broker+controller); "
                                   "3 replicates every topic 3 times, 2 in sync. Default: MOVIEAUGUR_KAFKA_BROKERS, "
                                   "else what this stack dir last ran, else 1.")) -> None:
    """Obtain what is missing (first run downloads and builds: minutes), start every component that
    is not running, and wait until each one answers its own protocol. Safe to repeat."""
    if brokers:
        os.environ["MOVIEAUGUR_KAFKA_BROKERS"] = str(brokers)
    stack = Stack()
    lines: list[str] = []
    try:
        stack.up()
        for hook in _after_up:
            lines.extend(hook(stack))
    except StackError as exc:
        _fail(exc)
    _print_status(stack, as_json=False)
    for line in lines:
        typer.echo(f"  {line}")


@app.command()
def down() -> None:
    """Stop the processes this stack started (from its pid files). Data and downloads are kept."""
    try:
        Stack().down()
    except StackError as exc:
        _fail(exc)


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Show each component: address, pid, health, memory, log file. Exit code 1 if any is unhealthy."""
    try:
        healthy = _print_status(Stack(), as_json=as_json)
    except StackError as exc:
        _fail(exc)
    if not healthy:
        raise typer.Exit(1)


@app.command()
def env() -> None:
    """List the environment variables that configure the stack, with their current values."""
    for name, default in ENV_DEFAULTS.items():
        typer.echo(f"{name}={os.environ.get(name) or default}")


def _print_status(stack: Stack, as_json: bool) -> bool:
    rows = stack.status()
    if as_json:
        typer.echo(json.dumps({"stack_dir": str(stack.cfg.root), "components": [r.as_dict() for r in rows]},
                              indent=2))
    else:
        typer.echo(f"stack dir: {stack.cfg.root}")
        for r in rows:
            mem = f"{r.rss_mb:.0f} MB" if r.rss_mb is not None else "-"
            mark = typer.style("up  ", fg=typer.colors.GREEN) if r.healthy else typer.style("DOWN", fg=typer.colors.RED)
            typer.echo(f"  {mark} {r.name:<9} {r.address:<42} pid {str(r.pid or '-'):<8} {mem:>7}  {r.detail}")
    return all(r.healthy for r in rows)


def main() -> None:
    app()
