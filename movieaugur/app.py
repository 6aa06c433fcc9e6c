"""aiohttp application factory: the roles a process plays, wired to one container.

Like Gorse's split, the same code runs as one process (embedded demo: commands, queries and
projectors together) or as separate processes behind NGINX (distributed: a command service, a query
service, projector workers). Projectors run as background tasks in a cleanup context, so they start
and stop with the app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Iterable

from aiohttp import web

from commands.http import add_command_routes
from commands.service import CommandService
from kernel.http import Metrics, build_middlewares, json_response
from movieaugur.bootstrap import Container
from movieaugur.dashboard import add_dashboard_routes
from movieaugur.local_views import LocalCatalog
from movieaugur.openapi import add_docs_routes, build_spec
from offline.arrival_notifier import ArrivalNotifier
from offline.serving import ModelRuntime
from queries.exposures import ExposureRecorder
from queries.http import add_query_routes, read_errors
from queries.service import QueryService

log = logging.getLogger(__name__)

CONTAINER = web.AppKey("container", Container)
ROLES = frozenset({"commands", "queries", "projectors"})


def create_app(container: Container, roles: Iterable[str] = ROLES) -> web.Application:
    roles = frozenset(roles)
    unknown = roles - ROLES
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}; choose from {sorted(ROLES)}")
    settings = container.settings
    metrics = Metrics()
    app = web.Application(
        middlewares=[
            *build_middlewares(metrics, settings.api_keys, settings.read_api_keys, settings.legacy_writes_without_key),
            read_errors,
        ],
        client_max_size=settings.max_body_bytes,
    )
    app[CONTAINER] = container
    if "commands" in roles:
        add_command_routes(app, CommandService(container.log, settings), metrics)
    if "queries" in roles:
        catalog = LocalCatalog(container.log)
        container.local_projectors.append(catalog.projector)
        app.cleanup_ctx.append(catalog.followed)
        # fold-in and the content model (offline/serving.py) behind the query side's port (queries/fresh.py)
        runtime = ModelRuntime(settings)
        catalog.store.listeners.append(runtime.catalog_changed)
        catalog.when_caught_up.append(runtime.warm_up)
        service = QueryService(container.store, settings, catalog=catalog.store, runtime=runtime)
        exposures = None
        if settings.exposure_log:  # lists served in experiments, to the log in the background
            exposures = ExposureRecorder(
                container.log, settings.exposure_flush_seconds, settings.exposure_queue_max, metrics.registry
            )
            app.cleanup_ctx.append(exposures.running)
        add_query_routes(app, service, metrics, exposures)
        add_dashboard_routes(app, container, service, metrics)  # /dashboard: HTML over the same reads
    spec = build_spec(settings.max_batch, settings)

    async def healthz(_: web.Request) -> web.Response:
        # The pid says which process answered where several share a port (command workers).
        return json_response({"status": "ok", "roles": sorted(roles), "pid": os.getpid()})

    async def readyz(_: web.Request) -> web.Response:
        problems = await readiness_problems(container)
        return json_response({"ready": not problems, "problems": problems}, status=503 if problems else 200)

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics.handle)
    add_docs_routes(app, spec)  # /openapi.json, /docs with its files under /docs/static/, and the / page
    if "projectors" in roles:
        app.cleanup_ctx.append(_projectors_running)
    metrics.before_scrape.append(lambda: record_lag(container, metrics))
    return app


async def record_lag(container: Container, metrics: Metrics) -> dict[str, dict[str, int]]:
    """Every view's lag behind the log, per partition, into the lag gauge; also returned."""
    lags: dict[str, dict[str, int]] = {}
    for projector in [*container.projectors(), *container.local_projectors]:
        name = projector.name if projector not in container.local_projectors else f"local-{projector.name}"
        try:
            lags[name] = await asyncio.wait_for(projector.lag(), 5.0)
        except Exception as error:
            log.warning("lag of %s unavailable: %r", name, error)
            continue
        for source, behind in lags[name].items():
            metrics.projection_lag.labels(name, source).set(behind)
    return lags


async def readiness_problems(container: Container) -> list[str]:
    problems = []
    try:
        await asyncio.wait_for(container.store.positions("__ready__"), 2.0)
    except Exception as error:
        problems.append(f"view store: {error!r}")
    try:
        await asyncio.wait_for(container.log.end_offsets("interactions"), 5.0)
    except Exception as error:
        problems.append(f"event log: {error!r}")
    return problems


async def _projectors_running(app: web.Application) -> AsyncIterator[None]:
    container = app[CONTAINER]
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(projector.run(stop), name=f"projector:{projector.name}")
        for projector in container.projectors(follow=True)
    ]
    notifier = ArrivalNotifier(container.log, container.store, container.settings)  # appends arrivals, notifications
    tasks.append(asyncio.create_task(notifier.run(stop), name=f"reactor:{notifier.name}"))
    yield
    stop.set()
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
