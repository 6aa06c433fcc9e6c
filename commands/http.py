"""The write API over HTTP (aiohttp): the older `POST /events` and the /v1 writes.

Bodies are read with a limit derived from MOVIEAUGUR_MAX_BATCH (kernel/http.py: read_body), so a
body that cannot hold a valid batch is refused before it is parsed or even read whole.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from pydantic import ValidationError

from commands.service import CommandService
from domain.ports import AppendResult, LogUnavailable, OutcomeUnknown
from kernel.errors import RequestError, describe
from kernel.http import Metrics, error_response, json_response, read_body

SERVICE = web.AppKey("command_service", CommandService)
METRICS = web.AppKey("command_metrics", Metrics)

#: One item's metadata (PUT /v1/items/{type}/{id}) is far below this.
MAX_ITEM_BODY = 1024 * 1024


async def _run(request: web.Request, stream: str, action: Callable[[], Awaitable[AppendResult]]) -> web.Response:
    metrics = request.app[METRICS]
    try:
        result = await action()
    except ValidationError as error:
        metrics.events_rejected.labels("invalid").inc()
        return json_response(describe(error), status=400)
    except RequestError as error:
        metrics.events_rejected.labels("conflict" if error.status == 409 else "invalid").inc()
        raise
    except OutcomeUnknown as error:
        metrics.events_rejected.labels("log_unavailable").inc()
        return error_response(503, "the event log did not confirm the write; it may or may not be recorded: retry "
                                   f"later with the same event ids and they are taken once ({error})")
    except LogUnavailable as error:
        metrics.events_rejected.labels("log_unavailable").inc()
        return error_response(503, f"the event log is unavailable; nothing was recorded; retry later ({error})")
    metrics.events_appended.labels(stream).inc(result.appended)
    return json_response({"appended": result.appended, "duplicates": result.duplicates})


async def _body(request: web.Request, limit: int | None = None) -> bytes:
    return await read_body(request, limit or request.app[SERVICE].settings.max_body_bytes)


async def post_legacy_events(request: web.Request) -> web.Response:
    body = await _body(request)
    return await _run(request, "interactions", lambda: request.app[SERVICE].record_legacy(body))


async def post_v1_events(request: web.Request) -> web.Response:
    body = await _body(request)
    return await _run(request, "interactions", lambda: request.app[SERVICE].record_interactions(body))


async def put_v1_item(request: web.Request) -> web.Response:
    body = await _body(request, MAX_ITEM_BODY)
    item_type, item_id = request.match_info["item_type"], request.match_info["item_id"]
    return await _run(request, "items", lambda: request.app[SERVICE].catalog_item(item_type, item_id, body))


async def post_v1_items(request: web.Request) -> web.Response:
    body = await _body(request)
    return await _run(request, "items", lambda: request.app[SERVICE].catalog_items(body))


def _list_path(request: web.Request) -> tuple[str, str]:
    return request.match_info["user_id"], request.match_info["list_name"]


async def post_list_item(request: web.Request) -> web.Response:
    body = await _body(request, MAX_ITEM_BODY)
    user_id, list_name = _list_path(request)
    return await _run(request, "lists", lambda: request.app[SERVICE].add_to_list(user_id, list_name, body))


async def put_list(request: web.Request) -> web.Response:
    body = await _body(request, MAX_ITEM_BODY)
    user_id, list_name = _list_path(request)
    return await _run(request, "lists", lambda: request.app[SERVICE].reorder_list(user_id, list_name, body))


async def delete_list_item(request: web.Request) -> web.Response:
    user_id, list_name = _list_path(request)
    unknown = sorted(set(request.query) - {"event_id"})
    if unknown:
        raise RequestError(400, f"query: field '{unknown[0]}': unknown field (this route takes only event_id)")
    event_id = request.query.get("event_id") or None
    if event_id is not None and len(event_id) > 256:
        raise RequestError(400, "query: field 'event_id': should have at most 256 characters")
    item_type, item_id = request.match_info["item_type"], request.match_info["item_id"]
    return await _run(
        request, "lists", lambda: request.app[SERVICE].remove_from_list(user_id, list_name, item_type, item_id, event_id)
    )


def add_command_routes(app: web.Application, service: CommandService, metrics: Metrics) -> None:
    app[SERVICE] = service
    app[METRICS] = metrics
    app.router.add_post("/events", post_legacy_events)
    app.router.add_post("/v1/events", post_v1_events)
    app.router.add_put("/v1/items/{item_type}/{item_id}", put_v1_item)
    app.router.add_post("/v1/items", post_v1_items)
    app.router.add_post("/v1/users/{user_id}/lists/{list_name}", post_list_item)
    app.router.add_put("/v1/users/{user_id}/lists/{list_name}", put_list)
    app.router.add_delete("/v1/users/{user_id}/lists/{list_name}/{item_type}/{item_id}", delete_list_item)
