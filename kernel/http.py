"""What every MovieAugur HTTP service shares: JSON responses, error shape, metrics, API keys.

Middlewares keep handlers to their business: an unexpected error becomes a JSON 500 with a request
id (and a log line), request counts and latencies go to Prometheus, and writes under /v1 need a
key when keys are configured.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

log = logging.getLogger("movieaugur.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def error_response(status: int, message: str, **extra: Any) -> web.Response:
    return json_response({"error": message, **extra}, status=status)


class Metrics:
    """Prometheus metrics of one process (its own registry, so tests can build many apps)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "movieaugur_http_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "movieaugur_http_request_seconds", "HTTP request latency", ["method", "route"], registry=self.registry
        )
        self.events_appended = Counter(
            "movieaugur_events_appended", "Events appended to the log", ["stream"], registry=self.registry
        )
        self.events_rejected = Counter(
            "movieaugur_batches_rejected", "Write batches rejected", ["reason"], registry=self.registry
        )
        self.fallbacks = Counter(
            "movieaugur_recommendation_fallbacks", "Recommendation answers served by the fallback", registry=self.registry
        )

    async def handle(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


def _route_name(request: web.Request) -> str:
    info = request.match_info.route.resource
    return info.canonical if info is not None else "unmatched"


def build_middlewares(metrics: Metrics, api_keys: tuple[str, ...]) -> list[Any]:
    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as http_error:
            status = http_error.status
            if http_error.status >= 400 and http_error.content_type != "application/json":
                return error_response(http_error.status, http_error.reason)
            raise
        except Exception:
            request_id = uuid.uuid4().hex[:12]
            log.exception("unhandled error in %s %s (request %s)", request.method, request.path, request_id)
            return error_response(500, f"internal error; quote request id {request_id} when reporting it")
        finally:
            route = _route_name(request)
            metrics.requests.labels(request.method, route, str(status)).inc()
            metrics.latency.labels(request.method, route).observe(time.perf_counter() - started)

    @web.middleware
    async def require_key(request: web.Request, handler: Handler) -> web.StreamResponse:
        needs_key = api_keys and request.method in {"POST", "PUT", "DELETE", "PATCH"} and request.path.startswith("/v1/")
        if needs_key and request.headers.get("X-API-Key") not in api_keys:
            return error_response(401, "this write needs a valid API key in the X-API-Key header")
        return await handler(request)

    return [observe, require_key]
