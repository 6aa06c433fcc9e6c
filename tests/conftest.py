"""Shared fixtures: an embedded container on a temporary folder, and an HTTP client on a real
socket (aiohttp's TestServer listens on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from kernel.http import SERVER_OPTIONS
from kernel.settings import Settings
from movieaugur.app import create_app
from movieaugur.bootstrap import Container, bootstrap

REPO = Path(__file__).resolve().parent.parent
MOVIELENS = Path(os.environ.get("MOVIEAUGUR_MOVIELENS", REPO.parent / "shared" / "data" / "ml-latest-small"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(mode="embedded", data_dir=tmp_path / "state")


@pytest.fixture
async def container(settings: Settings) -> AsyncIterator[Container]:
    built = await bootstrap(settings)
    yield built
    await built.close()


@contextlib.asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[TestClient]:
    """A client of `app` served on a real socket with the options `movieaugur serve` uses
    (TestClient would start the server with aiohttp's defaults)."""
    server = TestServer(app)
    await server.start_server(**SERVER_OPTIONS)
    async with TestClient(server) as test_client:
        yield test_client


@pytest.fixture
async def client(container: Container) -> AsyncIterator[TestClient]:
    """The embedded app with every role, projectors included."""
    async with serve(create_app(container)) as test_client:
        yield test_client


async def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02):  # type: ignore[no-untyped-def]
    """Poll an async predicate until it returns something truthy; fail with a clear message."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await predicate()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {predicate.__qualname__}")
        await asyncio.sleep(interval)


@pytest.fixture
def movielens() -> Path:
    if not (MOVIELENS / "ratings.csv").is_file():
        pytest.fail(f"MovieLens data not found at {MOVIELENS}; set MOVIEAUGUR_MOVIELENS")
    return MOVIELENS


async def settle(container: Container, timeout: float = 15.0) -> None:
    """Wait until every projection has applied everything in the log (the app's projectors run in
    the background; this waits for them, it does not run them)."""
    projectors = [*container.projectors(), *container.local_projectors]

    async def all_caught_up() -> bool:
        return all([await p.caught_up() for p in projectors])

    await wait_until(all_caught_up, timeout)
