"""A Python client for MovieAugur's HTTP API: `AsyncClient` (aiohttp) and `Client` (blocking).

    async with AsyncClient("http://127.0.0.1:8080", api_key="...") as client:
        result = await client.post_events(events)          # any number: sent in batches
        page = await client.popularity("movie", window="7d")

    with Client("http://127.0.0.1:8080") as client:        # the same, without async
        client.recommendations("u1", limit=10)

Uploads: `post_events` splits the events into batches within the server's limits (element count and
body bytes), gives every event without one an `event_id` (uuid4) before the first attempt, and
sends the batches one after another. Because the ids are fixed before anything is sent, a retry
(after a 503, a 429 or a connection lost mid-request) cannot append an event twice: the server
counts it as a duplicate, and the result says how many were.

Retries: 429, 502, 503, 504 and connection errors are retried with exponential backoff and full
jitter (tenacity), waiting what `Retry-After` asks when the server sends it. Other errors raise at
once, as typed exceptions: `BadRequest` (.details), `Unauthorized`, `NotFound`, `Conflict`
(.index, .event_id), `PayloadTooLarge`, ... all `MovieAugurError`s with .status, .message, .body
and .request_id (the server's X-Request-Id, to quote when reporting a problem).

This module depends on aiohttp, orjson and tenacity only, not on the server's code.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Awaitable, Iterable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypedDict, TypeVar, cast
from urllib.parse import quote

import aiohttp
import orjson
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt, stop_after_delay
from tenacity.wait import wait_base, wait_random_exponential

from kernel.http import parse_retry_after

__all__ = [
    "AsyncClient",
    "BadRequest",
    "Client",
    "ClientError",
    "Conflict",
    "ConnectionFailed",
    "MovieAugurError",
    "NotFound",
    "PayloadTooLarge",
    "ServerError",
    "TooManyRequests",
    "Unauthorized",
    "Unavailable",
    "UploadResult",
]

#: The server's defaults: MOVIEAUGUR_MAX_BATCH, and MOVIEAUGUR_MAX_BATCH x MOVIEAUGUR_MAX_EVENT_BYTES.
DEFAULT_MAX_BATCH = 20_000
DEFAULT_MAX_BODY_BYTES = 20_000 * 1024
RETRY_STATUSES = frozenset({429, 502, 503, 504})

T = TypeVar("T")


# -- errors ------------------------------------------------------------------------------------


class MovieAugurError(Exception):
    """An error answer (or none at all). `status` is the HTTP status (None: no answer)."""

    def __init__(self, message: str, status: int | None = None, body: Mapping[str, Any] | None = None,
                 request_id: str | None = None):
        super().__init__(f"{status} {message}" if status else message)
        self.message = message
        self.status = status
        self.body: dict[str, Any] = dict(body or {})
        self.request_id = request_id
        #: For an error raised by `post_events`/`post_items`: what earlier batches recorded.
        self.uploaded: UploadResult | None = None


class ClientError(MovieAugurError):
    """A 4xx: the request is wrong; sending it again will not help."""


class BadRequest(ClientError):
    """400. `details`: [{"index": element or None, "field": ..., "message": ...}]. From
    `post_events`, indexes count from the start of the whole upload, not of the batch."""

    @property
    def details(self) -> list[dict[str, Any]]:
        return list(self.body.get("details") or [])


class Unauthorized(ClientError):
    """401: a write (or, with read keys configured, a read) needs a valid X-API-Key."""


class NotFound(ClientError):
    """404: nothing is known for what was asked."""


class Conflict(ClientError):
    """409: an event_id was used before with different content. `index`: the element (from
    `post_events`: in the whole upload), `event_id`: the id."""

    @property
    def index(self) -> int | None:
        value = self.body.get("index")
        return value if isinstance(value, int) else None

    @property
    def event_id(self) -> str | None:
        value = self.body.get("event_id")
        return value if isinstance(value, str) else None


class PayloadTooLarge(ClientError):
    """413: the body is over the server's limit (the client's max_body_bytes is above the server's)."""


class TooManyRequests(ClientError):
    """429 after the last retry."""


class ServerError(MovieAugurError):
    """A 5xx."""


class Unavailable(ServerError):
    """503 after the last retry: the event log is unavailable; nothing was recorded."""


class ConnectionFailed(MovieAugurError):
    """No answer after the last retry: connection refused, reset, or timed out."""


_BY_STATUS: dict[int, type[MovieAugurError]] = {
    400: BadRequest, 401: Unauthorized, 404: NotFound, 409: Conflict, 413: PayloadTooLarge, 429: TooManyRequests,
    503: Unavailable,
}


def _error_for(status: int, body: Mapping[str, Any], request_id: str | None) -> MovieAugurError:
    kind = _BY_STATUS.get(status) or (ServerError if status >= 500 else ClientError)
    message = str(body.get("error") or f"HTTP {status}")
    return kind(message, status, body, request_id)


class _Retryable(Exception):
    """An answer worth retrying; carries the error to raise if it stays so, and Retry-After."""

    def __init__(self, error: MovieAugurError, retry_after: float | None):
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


class _wait_retry_after(wait_base):
    """What the server asked for in Retry-After (capped), else exponential backoff with jitter."""

    def __init__(self, backoff: wait_base, cap: float):
        self.backoff = backoff
        self.cap = cap

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, _Retryable) and error.retry_after is not None:
            return min(error.retry_after, self.cap)
        return float(self.backoff(retry_state))


# -- results -----------------------------------------------------------------------------------


class Appended(TypedDict):
    appended: int
    duplicates: int


class Item(TypedDict, total=False):
    id: str
    object_type: str
    title: str
    description: str
    release_date: str
    categories: list[str]
    keywords: list[str]
    creators: list[str]
    score: float
    popularity: float
    updated_at: int
    last_interaction: int


class Ranked(TypedDict, total=False):
    """Popularity, recommendations and similar items: `items` best first; `fallback` is
    "popularity" when the model had nothing for the user. Recommendations also carry
    `recommendation_id` (send it back with the interactions the list led to), and the A/B
    `experiment` and `variant` the user was served in (None outside experiments)."""

    items: list[Item]
    recommendation_id: str
    experiment: str | None
    variant: str | None
    model: str | None
    model_version: str | None
    fallback: str | None
    item_type: str
    item_id: str
    user_id: str
    window: str
    offset: int


class History(TypedDict):
    user_id: str
    items: list[Item]


@dataclass
class UploadResult:
    """What an upload did, from the answers the client received.

    `appended`: events the server said it appended. `duplicates`: events it already held with the
    same event id and content. `duplicates_on_retry`: of those, the ones reported by a retried
    request: events an earlier attempt had appended before its answer was lost (a 503 after the
    append, a dropped connection). `recorded` (appended + duplicates_on_retry) is how many events
    this upload put in the log. `event_ids`: every event's id, in the order given."""

    appended: int = 0
    duplicates: int = 0
    batches: int = 0
    retries: int = 0
    duplicates_on_retry: int = 0
    event_ids: list[str] = field(default_factory=list)

    @property
    def recorded(self) -> int:
        return self.appended + self.duplicates_on_retry


# -- batching ----------------------------------------------------------------------------------


def _batches(encoded: Iterable[bytes], max_count: int, max_bytes: int) -> Iterator[tuple[int, list[bytes]]]:
    """(index of the first element, elements) in order, each batch at most `max_count` elements
    and `max_bytes` bytes as a JSON array."""
    batch: list[bytes] = []
    size = 2  # "[" and "]"
    start = 0
    for index, element in enumerate(encoded):
        if 2 + len(element) > max_bytes:
            raise ValueError(f"element {index} is {len(element)} bytes as JSON: more than max_body_bytes={max_bytes} alone")
        grown = size + len(element) + (1 if batch else 0)
        if batch and (len(batch) >= max_count or grown > max_bytes):
            yield start, batch
            start, batch, size = index, [], 2
            grown = size + len(element)
        batch.append(element)
        size = grown
    if batch:
        yield start, batch


def _array(elements: list[bytes]) -> bytes:
    return b"[" + b",".join(elements) + b"]"


def _segment(value: str) -> str:
    return quote(value, safe="")


def _params(**values: Any) -> dict[str, str]:
    params = {}
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            params[name] = "true" if value else "false"
        else:
            params[name] = str(value)
    return params


# -- the async client --------------------------------------------------------------------------


class AsyncClient:
    """MovieAugur over HTTP, with aiohttp. Use as `async with`, or call `close()`.

    `max_batch` and `max_body_bytes` must not exceed the server's MOVIEAUGUR_MAX_BATCH and
    MOVIEAUGUR_MAX_BATCH x MOVIEAUGUR_MAX_EVENT_BYTES (the defaults are the server's defaults).
    A request is tried at most `max_attempts` times and for at most `max_retry_seconds`."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8080",
        *,
        api_key: str | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        timeout: float = 60.0,
        max_attempts: int = 6,
        max_retry_seconds: float = 120.0,
        backoff: float = 0.25,
        max_backoff: float = 10.0,
        max_retry_after: float = 60.0,
        retry_statuses: Iterable[int] = RETRY_STATUSES,
        session: aiohttp.ClientSession | None = None,
    ):
        if max_batch < 1 or max_body_bytes < 64:
            raise ValueError("max_batch must be at least 1 and max_body_bytes at least 64")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.max_batch = max_batch
        self.max_body_bytes = max_body_bytes
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.max_attempts = max_attempts
        self.max_retry_seconds = max_retry_seconds
        self.retry_statuses = frozenset(retry_statuses)
        self._wait = _wait_retry_after(wait_random_exponential(multiplier=backoff, max=max_backoff), max_retry_after)
        self._session = session
        self._own_session = session is None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None and self._own_session:
            await self._session.close()
        self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
            self._own_session = True
        return self._session

    # -- transport -------------------------------------------------------------------------

    async def _once(self, method: str, path: str, params: Mapping[str, str] | None, body: bytes | None) -> Any:
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["X-API-Key"] = self.api_key
        if body is not None:
            headers["Content-Type"] = "application/json"
        async with self._http().request(method, self.base_url + path, params=params, data=body, headers=headers) as response:
            raw = await response.read()
            request_id = response.headers.get("X-Request-Id")
            if response.status < 400:
                return orjson.loads(raw) if raw else None
            try:
                parsed = orjson.loads(raw)
            except orjson.JSONDecodeError:
                parsed = None
            error_body = parsed if isinstance(parsed, dict) else {"error": raw.decode(errors="replace")[:500] or response.reason}
            error = _error_for(response.status, error_body, request_id)
            if response.status in self.retry_statuses:
                raise _Retryable(error, parse_retry_after(response.headers.get("Retry-After")))
            raise error

    async def _request(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                       body: bytes | None = None, attempts: list[int] | None = None) -> Any:
        """The parsed JSON answer; retries what is worth retrying. `attempts` (if given) gets
        the number of the attempt that answered."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_attempts) | stop_after_delay(self.max_retry_seconds),
            wait=self._wait,
            retry=retry_if_exception_type((_Retryable, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError)),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    answer = await self._once(method, path, params, body)
                    if attempts is not None:
                        attempts.append(attempt.retry_state.attempt_number)
                    return answer
        except _Retryable as failed:
            raise failed.error from None
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as failed:
            raise ConnectionFailed(f"{method} {path}: no answer after retries: {failed!r}") from failed
        raise AssertionError("unreachable: tenacity stops by raising")  # pragma: no cover

    async def _upload(self, path: str, encoded: Iterable[bytes], result: UploadResult) -> UploadResult:
        for start, batch in _batches(encoded, self.max_batch, self.max_body_bytes):
            attempts: list[int] = []
            try:
                answer = await self._request("POST", path, body=_array(batch), attempts=attempts)
            except (BadRequest, Conflict) as error:
                _shift_indexes(error, start)
                error.uploaded = result
                raise
            except MovieAugurError as error:
                error.uploaded = result
                raise
            result.batches += 1
            result.appended += int(answer["appended"])
            result.duplicates += int(answer["duplicates"])
            if attempts and attempts[0] > 1:
                result.retries += attempts[0] - 1
                result.duplicates_on_retry += int(answer["duplicates"])
        return result

    # -- writes ----------------------------------------------------------------------------

    async def post_events(self, events: Iterable[Mapping[str, Any]]) -> UploadResult:
        """Record interactions (`POST /v1/events`), any number, in batches, in order.

        Each event: user_id, item_id, item_type, and optionally action ("view"), value (a
        rating's), timestamp (Unix seconds), event_id (given here when missing), and
        recommendation_id (of the served list the interaction came from: A/B attribution). Raises the
        first batch's error; `error.uploaded` says what earlier batches recorded."""
        result = UploadResult()

        def encoded() -> Iterator[bytes]:
            for event in events:
                if not event.get("event_id"):
                    event = {**event, "event_id": str(uuid.uuid4())}
                result.event_ids.append(str(event["event_id"]))
                yield orjson.dumps(event)

        return await self._upload("/v1/events", encoded(), result)

    async def post_items(self, items: Iterable[Mapping[str, Any]]) -> UploadResult:
        """Catalog metadata (`POST /v1/items`), any number, in batches: each item has item_type,
        item_id and its metadata (title, description, release_date, categories, keywords,
        creators). Safe to retry: an item's event id is derived from its content."""
        return await self._upload("/v1/items", (orjson.dumps(item) for item in items), UploadResult())

    async def put_item(self, item_type: str, item_id: str, **metadata: Any) -> Appended:
        """One item's full metadata (`PUT /v1/items/{item_type}/{item_id}`)."""
        path = f"/v1/items/{_segment(item_type)}/{_segment(item_id)}"
        return cast(Appended, await self._request("PUT", path, body=orjson.dumps(metadata)))

    # -- reads -----------------------------------------------------------------------------

    async def popularity(self, item_type: str, window: str | None = None, limit: int = 20, offset: int = 0,
                         category: str | None = None, *, decay: bool | None = None, at: float | None = None) -> Ranked:
        """Most popular items of a type; `window` is "all" or "1d".."366d"."""
        params = _params(window=window, limit=limit, offset=offset, category=category, decay=decay, at=at)
        return cast(Ranked, await self._request("GET", f"/v1/popularity/{_segment(item_type)}", params=params))

    async def recommendations(self, user_id: str, limit: int = 20, item_type: str | None = None,
                              exclude: Iterable[str] = (), model: str | None = None,
                              experiment: str | None = None) -> Ranked:
        """Recommendations for a user, seen items left out; `exclude` holds "item_type:item_id"
        keys. A user the model knows nothing of gets popularity, with `fallback` "popularity".
        `experiment`: serve the user's variant of that A/B experiment."""
        params = _params(limit=limit, item_type=item_type, exclude=",".join(exclude) or None, model=model,
                         experiment=experiment)
        return cast(Ranked, await self._request("GET", f"/v1/users/{_segment(user_id)}/recommendations", params=params))

    async def item(self, item_type: str, item_id: str) -> Item:
        return cast(Item, await self._request("GET", f"/v1/items/{_segment(item_type)}/{_segment(item_id)}"))

    async def similar(self, item_type: str, item_id: str, limit: int = 20, model: str | None = None) -> Ranked:
        path = f"/v1/items/{_segment(item_type)}/{_segment(item_id)}/similar"
        return cast(Ranked, await self._request("GET", path, params=_params(limit=limit, model=model)))

    async def history(self, user_id: str, limit: int = 50, offset: int = 0) -> History:
        path = f"/v1/users/{_segment(user_id)}/history"
        return cast(History, await self._request("GET", path, params=_params(limit=limit, offset=offset)))

    async def models(self) -> list[dict[str, Any]]:
        """The published models, the current version of each."""
        return cast(list[dict[str, Any]], (await self._request("GET", "/v1/models"))["models"])

    async def model(self, name: str) -> dict[str, Any]:
        """One published model: `name` or `name@version`."""
        return cast(dict[str, Any], await self._request("GET", f"/v1/models/{_segment(name)}"))

    async def item_types(self) -> list[str]:
        return cast(list[str], (await self._request("GET", "/v1/item-types"))["item_types"])

    async def experiments(self) -> list[dict[str, Any]]:
        """Each A/B experiment's variants with their exposures, clicks, conversions and rates."""
        return cast(list[dict[str, Any]], (await self._request("GET", "/v1/experiments"))["experiments"])

    # -- users' lists (GET/POST/PUT/DELETE /v1/users/{user_id}/lists...) ------------------------
    # Every write carries an event_id fixed before the first attempt, so a retry appends nothing.

    def _list_path(self, user_id: str, list_name: str) -> str:
        return f"/v1/users/{_segment(user_id)}/lists/{_segment(list_name)}"

    async def lists(self, user_id: str, list_name: str | None = None, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        """Without `list_name`, the user's lists with their item counts and effects (GET
        /v1/users/{user_id}/lists); with it, that list's items in order (GET .../lists/{list_name})."""
        if list_name is None:
            return cast(dict[str, Any], await self._request("GET", f"/v1/users/{_segment(user_id)}/lists"))
        params = _params(limit=limit, offset=offset)
        return cast(dict[str, Any], await self._request("GET", self._list_path(user_id, list_name), params=params))

    async def add_to_list(self, user_id: str, list_name: str, item_type: str, item_id: str,
                          event_id: str | None = None) -> dict[str, Any]:
        """Put an item at the end of a list (POST /v1/users/{user_id}/lists/{list_name}); an item
        already on it keeps its place."""
        body = orjson.dumps({"item_type": item_type, "item_id": item_id, "event_id": event_id or str(uuid.uuid4())})
        return cast(dict[str, Any], await self._request("POST", self._list_path(user_id, list_name), body=body))

    async def remove_from_list(self, user_id: str, list_name: str, item_type: str, item_id: str,
                               event_id: str | None = None) -> dict[str, Any]:
        """Take an item off a list (DELETE /v1/users/{user_id}/lists/{list_name}/{item_type}/{item_id})."""
        path = f"{self._list_path(user_id, list_name)}/{_segment(item_type)}/{_segment(item_id)}"
        params = {"event_id": event_id or str(uuid.uuid4())}
        return cast(dict[str, Any], await self._request("DELETE", path, params=params))

    async def reorder_list(self, user_id: str, list_name: str, items: Iterable[tuple[str, str]],
                           event_id: str | None = None) -> dict[str, Any]:
        """Replace a list by these (item_type, item_id) items in this order (PUT
        /v1/users/{user_id}/lists/{list_name}); items not named are taken off, none empties it."""
        body = orjson.dumps({"items": [{"item_type": t, "item_id": i} for t, i in items],
                             "event_id": event_id or str(uuid.uuid4())})
        return cast(dict[str, Any], await self._request("PUT", self._list_path(user_id, list_name), body=body))


def _shift_indexes(error: BadRequest | Conflict, start: int) -> None:
    """Element indexes of a batch's error, made indexes into the whole upload."""
    if not start:
        return
    if isinstance(error, Conflict) and error.index is not None:
        error.body["index"] = error.index + start
    for detail in error.body.get("details") or ():
        if isinstance(detail.get("index"), int):
            detail["index"] += start
    error.message = f"{error.message} (element indexes count from the start of the upload: this batch began at {start})"
    error.args = (f"{error.status} {error.message}",)


# -- the blocking client -----------------------------------------------------------------------


class Client:
    """MovieAugur over HTTP without async: the `AsyncClient`'s methods, blocking.

    It runs an `AsyncClient` on an event loop in a private daemon thread, so batching, retries
    and errors are one implementation (not a second one over urllib), connections are pooled,
    and it works from any thread, also where an event loop already runs (a notebook). Close it
    (or use `with`) to stop the thread."""

    def __init__(self, base_url: str = "http://127.0.0.1:8080", **options: Any):
        self._async = AsyncClient(base_url, **options)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="movieaugur-client", daemon=True)
        self._thread.start()
        self._closed = False

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._run(self._async.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    def _run(self, coroutine: Awaitable[T]) -> T:
        if self._loop.is_closed():
            raise RuntimeError("this Client is closed")
        future: Future[T] = asyncio.run_coroutine_threadsafe(_awaited(coroutine), self._loop)
        return future.result()

    @property
    def api_key(self) -> str | None:
        return self._async.api_key

    def post_events(self, events: Iterable[Mapping[str, Any]]) -> UploadResult:
        return self._run(self._async.post_events(events))

    def post_items(self, items: Iterable[Mapping[str, Any]]) -> UploadResult:
        return self._run(self._async.post_items(items))

    def put_item(self, item_type: str, item_id: str, **metadata: Any) -> Appended:
        return self._run(self._async.put_item(item_type, item_id, **metadata))

    def popularity(self, item_type: str, window: str | None = None, limit: int = 20, offset: int = 0,
                   category: str | None = None, *, decay: bool | None = None, at: float | None = None) -> Ranked:
        return self._run(self._async.popularity(item_type, window, limit, offset, category, decay=decay, at=at))

    def recommendations(self, user_id: str, limit: int = 20, item_type: str | None = None,
                        exclude: Iterable[str] = (), model: str | None = None,
                        experiment: str | None = None) -> Ranked:
        return self._run(self._async.recommendations(user_id, limit, item_type, exclude, model, experiment))

    def item(self, item_type: str, item_id: str) -> Item:
        return self._run(self._async.item(item_type, item_id))

    def similar(self, item_type: str, item_id: str, limit: int = 20, model: str | None = None) -> Ranked:
        return self._run(self._async.similar(item_type, item_id, limit, model))

    def history(self, user_id: str, limit: int = 50, offset: int = 0) -> History:
        return self._run(self._async.history(user_id, limit, offset))

    def models(self) -> list[dict[str, Any]]:
        return self._run(self._async.models())

    def experiments(self) -> list[dict[str, Any]]:
        return self._run(self._async.experiments())

    def model(self, name: str) -> dict[str, Any]:
        return self._run(self._async.model(name))

    def item_types(self) -> list[str]:
        return self._run(self._async.item_types())

    def lists(self, user_id: str, list_name: str | None = None, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        return self._run(self._async.lists(user_id, list_name, limit, offset))

    def add_to_list(self, user_id: str, list_name: str, item_type: str, item_id: str,
                    event_id: str | None = None) -> dict[str, Any]:
        return self._run(self._async.add_to_list(user_id, list_name, item_type, item_id, event_id))

    def remove_from_list(self, user_id: str, list_name: str, item_type: str, item_id: str,
                         event_id: str | None = None) -> dict[str, Any]:
        return self._run(self._async.remove_from_list(user_id, list_name, item_type, item_id, event_id))

    def reorder_list(self, user_id: str, list_name: str, items: Iterable[tuple[str, str]],
                     event_id: str | None = None) -> dict[str, Any]:
        return self._run(self._async.reorder_list(user_id, list_name, items, event_id))


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable
