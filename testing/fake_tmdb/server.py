"""A real HTTP stand-in for TMDB v3 on 127.0.0.1, with faults switchable per test.

The real API is unreachable from our machines and rate-limited anyway, so the client is
tested over real sockets against this server instead of mocks: paging, auth, 429 +
Retry-After, 5xx, slow answers and malformed items all go through the actual aiohttp,
tenacity and aiolimiter code paths. The demo uses it too, as a local "TMDB".

Usage::

    async with FakeTmdbServer(api_key="k") as fake:
        fake.fail_429("/3/movie/popular", times=1, retry_after=1)
        cfg = TmdbConfig(api_key="k", base_url=fake.base_url)

    with serve_in_thread(api_key="k") as fake:   # from synchronous code (DAG tests, demo)
        ...

    python -m testing.fake_tmdb.server --port 8089 --api-key k   # standalone
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import math
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from testing.fake_tmdb.catalog import FakeCatalog, build_catalog

INVALID_KEY = {"success": False, "status_code": 7, "status_message": "Invalid API key: You must be granted a valid key."}
NOT_FOUND = {"success": False, "status_code": 34, "status_message": "The resource you requested could not be found."}
RATE_LIMITED = {"success": False, "status_code": 25,
                "status_message": "Your request count (#) is over the allowed limit of (40)."}
UNAVAILABLE = {"success": False, "status_code": 9, "status_message": "Service offline."}
BAD_PAGE = {"success": False, "status_code": 22, "status_message": "Invalid page: Pages start at 1 and max at 500."}
#: What a corrupted item looks like: wrong-typed id and popularity, title missing.
MALFORMED_ITEM = {"id": "not-a-number", "popularity": "very", "overview": 42}


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it; ``at`` is ``time.monotonic()`` on arrival."""

    path: str
    query: dict[str, str]
    status: int
    at: float
    auth: str  # "api_key", "bearer" or "none"


@dataclass
class _Fault:
    remaining: int
    value: float  # Retry-After seconds, HTTP status or delay seconds, by fault kind


class FakeTmdbServer:
    """TMDB v3 subset: popular lists, details (+keywords,credits), genre lists.

    Faults are keyed by exact path (query ignored) and consumed one per matching request.
    ``requests`` records everything, so tests measure retry timing from the server's side.
    """

    def __init__(self, api_key: str | None = "fake-tmdb-key", bearer_token: str | None = "fake-tmdb-token", *,
                 n_movies: int = 45, n_tv: int = 30, page_size: int = 20, seed: int = 7,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.api_key = api_key
        self.bearer_token = bearer_token
        self.page_size = page_size
        self.catalog: FakeCatalog = build_catalog(n_movies, n_tv, seed)
        self.requests: list[RecordedRequest] = []
        self._host, self._port = host, port
        self._faults: dict[str, dict[str, _Fault]] = {"429": {}, "5xx": {}, "slow": {}}
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None
        self.base_url = ""

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> str:
        """Bind (random free port by default) and serve; returns ``base_url`` (no trailing /)."""
        app = web.Application()
        app.router.add_get("/3/{kind:movie|tv}/popular", self._popular)
        app.router.add_get("/3/genre/{kind:movie|tv}/list", self._genres)
        app.router.add_get("/3/{kind:movie|tv}/{id}", self._details)
        self._stopping = asyncio.Event()
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        await web.SockSite(self._runner, sock).start()
        self.base_url = f"http://{self._host}:{sock.getsockname()[1]}"
        return self.base_url

    async def stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()  # wake slow handlers so shutdown does not wait for them
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTmdbServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- faults ----------------------------------------------------------------------------

    def fail_429(self, path: str, times: int = 1, retry_after: float = 1) -> None:
        """The next ``times`` requests of ``path`` get 429 with ``Retry-After: retry_after``."""
        self._faults["429"][path] = _Fault(times, retry_after)

    def fail_5xx(self, path: str, times: int = 1, status: int = 503) -> None:
        """The next ``times`` requests of ``path`` get ``status`` (a 5xx)."""
        self._faults["5xx"][path] = _Fault(times, status)

    def slow(self, path: str, delay: float, times: int = 1) -> None:
        """The next ``times`` requests of ``path`` wait ``delay`` seconds before answering."""
        self._faults["slow"][path] = _Fault(times, delay)

    def corrupt_popular_item(self, kind: str, position: int) -> dict[str, Any]:
        """Replace the popular item at 0-based ``position`` by a malformed one; returns the original."""
        original = self.catalog.popular[kind][position]
        self.catalog.popular[kind][position] = dict(MALFORMED_ITEM)
        return original

    def corrupt_details(self, kind: str, tmdb_id: int) -> None:
        """Make a title's details malformed (title/name missing, genres of the wrong type)."""
        details = self.catalog.details[kind][tmdb_id]
        details.pop("title", None)
        details.pop("name", None)
        details["genres"] = "Drama"

    def reset_faults(self) -> None:
        for table in self._faults.values():
            table.clear()

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    def _take(self, kind: str, path: str) -> float | None:
        fault = self._faults[kind].get(path)
        if fault is None or fault.remaining <= 0:
            return None
        fault.remaining -= 1
        return fault.value

    # -- request handling ------------------------------------------------------------------

    def _auth(self, request: web.Request) -> str | None:
        header = request.headers.get("Authorization", "")
        if self.bearer_token and header == f"Bearer {self.bearer_token}":
            return "bearer"
        if self.api_key and request.query.get("api_key") == self.api_key:
            return "api_key"
        return None

    async def _guard(self, request: web.Request) -> web.Response | None:
        """Record, authenticate and apply faults; a Response means 'answer this instead'."""
        path = request.path
        query = {k: v for k, v in request.query.items() if k != "api_key"}
        auth = self._auth(request)

        def record(status: int) -> None:
            self.requests.append(RecordedRequest(path, query, status, time.monotonic(), auth or "none"))

        if auth is None:
            record(401)
            return web.json_response(INVALID_KEY, status=401)
        retry_after = self._take("429", path)
        if retry_after is not None:
            record(429)
            return web.json_response(RATE_LIMITED, status=429, headers={"Retry-After": str(math.ceil(retry_after))})
        status = self._take("5xx", path)
        if status is not None:
            record(int(status))
            return web.json_response(UNAVAILABLE, status=int(status))
        record(200)
        delay = self._take("slow", path)
        if delay is not None and self._stopping is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
        return None

    async def _popular(self, request: web.Request) -> web.Response:
        if (early := await self._guard(request)) is not None:
            return early
        kind = request.match_info["kind"]
        try:
            page = int(request.query.get("page", "1"))
        except ValueError:
            page = 0
        if not 1 <= page <= 500:
            return web.json_response(BAD_PAGE, status=400)
        items = self.catalog.popular[kind]
        start = (page - 1) * self.page_size
        return web.json_response({
            "page": page,
            "results": copy.deepcopy(items[start:start + self.page_size]),
            "total_pages": math.ceil(len(items) / self.page_size),
            "total_results": len(items),
        })

    async def _details(self, request: web.Request) -> web.Response:
        if (early := await self._guard(request)) is not None:
            return early
        kind = request.match_info["kind"]
        try:
            details = self.catalog.details[kind][int(request.match_info["id"])]
        except (KeyError, ValueError):
            return web.json_response(NOT_FOUND, status=404)
        appended = set(request.query.get("append_to_response", "").split(","))
        body = {k: copy.deepcopy(v) for k, v in details.items() if k not in {"keywords", "credits"} or k in appended}
        return web.json_response(body)

    async def _genres(self, request: web.Request) -> web.Response:
        if (early := await self._guard(request)) is not None:
            return early
        genres = self.catalog.genres[request.match_info["kind"]]
        return web.json_response({"genres": [{"id": g, "name": n} for g, n in genres.items()]})


@contextlib.contextmanager
def serve_in_thread(**kwargs: Any) -> Iterator[FakeTmdbServer]:
    """Run a :class:`FakeTmdbServer` on its own event loop in a daemon thread (for sync callers)."""
    server = FakeTmdbServer(**kwargs)
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="fake-tmdb", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("fake TMDB server did not start within 10 s")
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def main(argv: list[str] | None = None) -> None:
    """Serve until interrupted; prints the base URL to point ``TMDB_BASE_URL`` at."""
    parser = argparse.ArgumentParser(description="Fake TMDB v3 server for local runs and demos")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--api-key", default="fake-tmdb-key")
    parser.add_argument("--bearer-token", default="fake-tmdb-token")
    parser.add_argument("--movies", type=int, default=45)
    parser.add_argument("--tv", type=int, default=30)
    args = parser.parse_args(argv)

    async def serve() -> None:
        server = FakeTmdbServer(args.api_key, args.bearer_token, n_movies=args.movies, n_tv=args.tv,
                                host=args.host, port=args.port)
        print(f"fake TMDB serving at {await server.start()} (api_key={args.api_key})", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
