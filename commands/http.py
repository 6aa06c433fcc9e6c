"""The write API over HTTP (aiohttp): the older `POST /events` and the /v1 writes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from pydantic import ValidationError

from kernel.errors import describe
from commands.service import CommandService
from domain.ports import AppendResult, LogUnavailable
from kernel.http import Metrics, error_response, json_response

SERVICE = web.AppKey("command_service", CommandService)
METRICS = web.AppKey("command_metrics", Metrics)


async def _run(request: web.Request, action: Callable[[], Awaitable[AppendResult]]) -> web.Response:
    metrics = request.app[METRICS]
    try:
        result = await action()
    except ValidationError as error:
        metrics.events_rejected.labels("invalid").inc()
        return json_response(describe(error), status=400)
    except LogUnavailable as error:
        metrics.events_rejected.labels("log_unavailable").inc()
        return error_response(503, f"the event log is unavailable; nothing was recorded; retry later ({error})")
    metrics.events_appended.labels("interactions").inc(result.appended)
    return json_response({"appended": result.appended, "duplicates": result.duplicates})


async def post_legacy_events(request: web.Request) -> web.Response:
    body = await request.read()
    return await _run(request, lambda: request.app[SERVICE].record_legacy(body))


async def post_v1_events(request: web.Request) -> web.Response:
    body = await request.read()
    return await _run(request, lambda: request.app[SERVICE].record_interactions(body))


async def put_v1_item(request: web.Request) -> web.Response:
    body = await request.read()
    item_type, item_id = request.match_info["item_type"], request.match_info["item_id"]
    return await _run(request, lambda: request.app[SERVICE].catalog_item(item_type, item_id, body))


async def post_v1_items(request: web.Request) -> web.Response:
    body = await request.read()
    return await _run(request, lambda: request.app[SERVICE].catalog_items(body))


def add_command_routes(app: web.Application, service: CommandService, metrics: Metrics) -> None:
    app[SERVICE] = service
    app[METRICS] = metrics
    app.router.add_post("/events", post_legacy_events)
    app.router.add_post("/v1/events", post_v1_events)
    app.router.add_put("/v1/items/{item_type}/{item_id}", put_v1_item)
    app.router.add_post("/v1/items", post_v1_items)
