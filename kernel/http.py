"""What every MovieAugur HTTP service shares: JSON responses, error shape, metrics, API keys,
request ids and bounded request bodies.

Middlewares keep handlers to their business: every response carries a request id; a client error
raised anywhere (`RequestError`) becomes its JSON 4xx; an unexpected error becomes a JSON 500 quoting
the request id, logged as one escaped line; a client that goes away mid-request is counted, not
treated as a server error; request counts and latencies go to Prometheus; keys are checked.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import re
import time
import traceback
import uuid
import zlib
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import orjson
from aiohttp import ClientConnectionResetError, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from kernel.errors import RequestError

log = logging.getLogger("movieaugur.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Status recorded (never sent) for a request whose client disconnected before the answer.
CLIENT_CLOSED = 499
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/docs", "/openapi.json", "/"})
_WRITES = frozenset({"POST", "PUT", "DELETE", "PATCH"})

#: The id of the request being answered, set by the `observe` middleware for the time of the
#: request (None outside one), so log records can name it (RequestIdFilter).
REQUEST_ID: ContextVar[str | None] = ContextVar("movieaugur_request_id", default=None)


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to a record logged while a request is answered (nothing otherwise).
    Put it on a handler: a logger's filters do not see records propagated from its children."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = REQUEST_ID.get()
        if request_id is not None and not hasattr(record, "request_id"):
            record.request_id = request_id
        return True


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def error_response(status: int, message: str, **extra: Any) -> web.Response:
    return json_response({"error": message, **extra}, status=status)


def escaped(text: str, limit: int = 300) -> str:
    """User-supplied text made safe for one log line: control characters and quotes escaped."""
    return json.dumps(text[:limit])[1:-1] + ("…" if len(text) > limit else "")


class ClientGone(Exception):
    """The client closed the connection before its request was read or answered."""


#: How the HTTP server must run for read_body's guarantees: bodies are decompressed by read_body
#: (bounded), not by aiohttp (which inflates whatever arrives, even after the answer is sent), and
#: an unread remainder is not drained for long after a refusal.
SERVER_OPTIONS: dict[str, Any] = {"auto_decompress": False, "lingering_time": 0.5}

_ENCODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, decompressed, refused with a 413 as soon as it passes `limit` bytes.

    A declared Content-Length over the limit is refused before anything is read; otherwise the
    stream is counted as it arrives, and a compressed body is inflated here at most `limit + 1`
    bytes far, so neither a chunked upload nor a small gzip body that inflates enormously is ever
    held whole or inflated in full. A body that does not decode is a 400; an encoding we do not
    take is a 415. Requires the server to run with SERVER_OPTIONS."""
    too_large = RequestError(
        413,
        f"request body exceeds {limit} bytes (MOVIEAUGUR_MAX_BATCH x MOVIEAUGUR_MAX_EVENT_BYTES), "
        "after decompression; split it into smaller batches",
    )
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity", *_ENCODINGS):
        raise RequestError(415, f"Content-Encoding {escaped(encoding, 40)!r} is not accepted; send gzip, deflate or none")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    inflate = zlib.decompressobj(_ENCODINGS[encoding]) if encoding in _ENCODINGS else None
    body = bytearray()
    received = 0
    try:
        while chunk := await request.content.readany():
            received += len(chunk)
            if received > limit:
                raise too_large
            if inflate is None:
                body += chunk
            else:
                _inflate_into(body, inflate, chunk, limit)
            if len(body) > limit:
                raise too_large
    except zlib.error as error:
        raise RequestError(400, f"request body does not decode as Content-Encoding {encoding}: {error}") from error
    except (HttpProcessingError, RequestPayloadError) as error:
        raise RequestError(400, f"request body could not be read: {escaped(str(error), 200)}") from error
    except (ConnectionResetError, ClientConnectionResetError) as error:
        raise ClientGone(str(error)) from error
    if inflate is not None and not inflate.eof:
        raise RequestError(400, f"request body is a truncated {encoding} stream")
    return bytes(body)


def _inflate_into(body: bytearray, inflate: Any, chunk: bytes, limit: int) -> None:
    """Inflate `chunk` into `body`, never past limit + 1 bytes (the rest stays unread)."""
    data = chunk
    while data and len(body) <= limit:
        body += inflate.decompress(data, limit + 1 - len(body))
        data = inflate.unconsumed_tail


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
        self.projection_lag = Gauge(
            "movieaugur_projection_lag_events",
            "Offsets of a log partition a view has not applied yet (0 = caught up), at scrape time",
            ["projection", "partition"],
            registry=self.registry,
        )
        # Async refreshers run before each scrape (values that must be read from the log and views).
        self.before_scrape: list[Callable[[], Awaitable[object]]] = []

    async def handle(self, request: web.Request) -> web.Response:
        for refresh in self.before_scrape:
            try:
                await refresh()
            except Exception as error:  # e.g. a view being rebuilt: its gauges keep their last values
                log.warning("a metrics refresh failed (%r); scraping the rest", error)
        return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


def _open(path: str) -> bool:
    """Paths anyone may read: health, metrics, and the API docs with their assets."""
    return path in _OPEN_PATHS or path.startswith("/docs/static/")


def _route_name(request: web.Request) -> str:
    info = request.match_info.route.resource
    return info.canonical if info is not None else "unmatched"


def _request_id(request: web.Request) -> str:
    given = request.headers.get("X-Request-Id", "")
    return given if _REQUEST_ID.match(given) else uuid.uuid4().hex[:16]


def build_middlewares(
    metrics: Metrics,
    api_keys: tuple[str, ...],
    read_keys: tuple[str, ...] = (),
    legacy_writes_without_key: bool = False,
) -> list[Any]:
    """`api_keys`: when set, every write needs one of them in X-API-Key (the older `POST /events`
    too, unless `legacy_writes_without_key`). `read_keys`: when set, reads need one of them or a
    write key; health, metrics and docs stay open."""
    writers = frozenset(api_keys)
    readers = frozenset(read_keys) | writers if read_keys else frozenset()

    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        request_id = _request_id(request)
        request_id_token = REQUEST_ID.set(request_id)
        status = 500
        try:
            response = await _answer(request, handler, request_id)
            status = CLIENT_CLOSED if isinstance(response, _Unsent) else response.status
            response.headers["X-Request-Id"] = request_id
            return response
        except web.HTTPException as passed:  # redirects and other non-error answers pass through
            status = passed.status
            passed.headers["X-Request-Id"] = request_id
            raise
        except asyncio.CancelledError:  # aiohttp cancels a handler whose client went away
            status = CLIENT_CLOSED
            raise
        finally:
            REQUEST_ID.reset(request_id_token)
            route = _route_name(request)
            metrics.requests.labels(request.method, route, str(status)).inc()
            metrics.latency.labels(request.method, route).observe(time.perf_counter() - started)

    @web.middleware
    async def require_key(request: web.Request, handler: Handler) -> web.StreamResponse:
        key = request.headers.get("X-API-Key")
        if request.method in _WRITES:
            exempt = legacy_writes_without_key and request.path == "/events"
            if writers and not exempt and key not in writers:
                return error_response(401, "this write needs a valid API key in the X-API-Key header")
        elif readers and not _open(request.path) and key not in readers:
            return error_response(401, "reading needs a valid API key in the X-API-Key header (MOVIEAUGUR_READ_API_KEYS)")
        return await handler(request)

    return [observe, require_key]


class _Unsent(web.Response):
    """The answer to a client that has already gone: never delivered, counted as 499."""


async def _answer(request: web.Request, handler: Handler, request_id: str) -> web.StreamResponse:
    """The handler's response, or the JSON error response for what it raised."""
    try:
        return await handler(request)
    except RequestError as error:
        return json_response(error.body(), status=error.status)
    except web.HTTPException as http_error:
        if http_error.status >= 400:
            return error_response(http_error.status, http_error.reason)
        raise
    except ClientGone as gone:
        where = f"{request.method} {escaped(request.path)}"
        log.info("request %s: client went away during %s (%s)", request_id, where, escaped(str(gone)))
        return _Unsent(status=400, text="client went away")
    except Exception as error:
        one_line = escaped("".join(traceback.format_exception(error)), limit=8000)
        log.error("request %s: unhandled error in %s %s: %s", request_id, request.method, escaped(request.path), one_line)
        return error_response(500, f"internal error; quote request id {request_id} when reporting it")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), else None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
