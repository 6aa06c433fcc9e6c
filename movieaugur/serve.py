"""Run the HTTP roles of one process until interrupted (used by `serve` and `demo`)."""

from __future__ import annotations

import asyncio
import signal

from aiohttp import web

from kernel.http import SERVER_OPTIONS
from kernel.settings import Settings
from movieaugur.app import create_app
from movieaugur.bootstrap import Container, bootstrap
from movieaugur.progress import say
from offline.arrival_notifier import ArrivalNotifier


def port_for(settings: Settings, roles: set[str]) -> int:
    """In distributed mode the command and query services get their own ports (NGINX routes)."""
    if settings.mode == "distributed" and roles == {"commands"}:
        return settings.command_port
    if settings.mode == "distributed" and roles <= {"queries", "projectors"} and "queries" in roles:
        return settings.query_port
    return settings.port


async def serve_until_stopped(container: Container, roles: set[str], port: int) -> None:
    app = create_app(container, roles)
    runner = web.AppRunner(app, access_log=None, **SERVER_OPTIONS)
    await runner.setup()
    settings = container.settings
    # Command workers share one port (the kernel spreads NGINX's connections among them), always,
    # so that `movieaugur up --command-workers N` can add workers beside one already running.
    shared = settings.mode == "distributed" and roles == {"commands"}
    site = web.TCPSite(runner, settings.host, port, reuse_address=True, reuse_port=shared or None)
    await site.start()
    say(f"serving {', '.join(sorted(roles))} on http://{container.settings.host}:{port} (docs: /docs)")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


async def run_services(settings: Settings, roles: set[str]) -> None:
    container = await bootstrap(settings)
    try:
        if roles == {"projectors"}:
            await _projectors_only(container)
        else:
            await serve_until_stopped(container, roles, port_for(settings, roles))
    finally:
        await container.close()


async def _projectors_only(container: Container) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    say(f"projecting {', '.join(container.projections)} (Ctrl-C to stop)")
    notifier = ArrivalNotifier(container.log, container.store, container.settings)  # appends arrivals, notifications
    watchers = []
    if container.settings.mode == "distributed":  # Connect-kept views whose collection vanished are copied again
        from movieaugur.sink_watch import SinkWatch

        watchers.append(SinkWatch(container).run(stop))
    await asyncio.gather(*(projector.run(stop) for projector in container.projectors(follow=True)), notifier.run(stop), *watchers)
