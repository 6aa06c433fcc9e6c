"""`movieaugur demo`: everything in one process, no servers, ready in well under a minute; or, with
`--distributed`, the whole distributed system (`movieaugur up`) with the same data and curl lines."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp

from domain.events import INTERACTIONS, InteractionRecorded
from infra.local import StackError
from kernel.settings import Settings
from movieaugur import operations
from movieaugur.bootstrap import Container, bootstrap
from movieaugur.progress import progress_bar, say
from movieaugur.serve import serve_until_stopped
from projections.recommendations import read_model

if TYPE_CHECKING:
    from movieaugur.system import System


async def run_demo(settings: Settings, movielens: Path | None, fresh: bool, users: int, budget: float) -> None:
    started = time.perf_counter()
    if fresh:
        operations.wipe_embedded_state(settings.data_dir)
    container = await bootstrap(settings)
    try:
        say(f"state in {settings.data_dir}")
        if await operations.log_is_empty(container):
            if movielens is not None:
                with progress_bar("importing MovieLens", None) as advance:
                    result = await operations.load_movielens(container, movielens, lambda _p, n: advance(n))
                say(f"imported MovieLens: {result}")
            else:
                result = await operations.load_sample(container, users=users)
                say(f"generated a sample service: {result['catalog']} titles, {result['interactions']} interactions, {result['users']} users")
        with progress_bar("projecting", None) as advance:
            await operations.catch_up(container, lambda _name, n: advance(n))
        model = await read_model(container.store, settings.default_model)
        if model is None:
            report = await operations.train(container, time_budget=budget, force=True, progress=say)
            say(f"model {report.model} {report.version} ({report.algorithm}): {report.reason}")
            await operations.catch_up(container)
        example = await _example_user(container)
        say(f"ready in {operations.elapsed(started)}. Try:")
        _print_tries(f"http://{settings.host}:{settings.port}", example)
        await serve_until_stopped(container, {"commands", "queries", "projectors"}, settings.port)
    finally:
        await container.close()


def _print_tries(base: str, example: str) -> None:
    for path in (
        "/popularity/movie",
        f"/recommendations/default/users/{example}",
        f"/v1/users/{example}/recommendations?item_type=series&limit=5",
        "/v1/popularity/movie?window=7d&limit=5",
        "/docs",
    ):
        say(f"  curl '{base}{path}'")


async def run_distributed_demo(settings: Settings, movielens: Path | None, users: int, budget: float,
                               serve_timeout: float = 180.0) -> None:
    """`movieaugur demo --distributed`: the whole system up, data in Kafka, a model published, the
    recommendations checked through NGINX; then it waits for Ctrl-C and leaves the system running."""
    from movieaugur.stack_settings import stack_settings
    from movieaugur.system import System

    started = time.perf_counter()
    system = System()
    await asyncio.to_thread(system.up)
    settings = stack_settings(system.stack, data_dir=settings.data_dir)
    container = await bootstrap(settings)
    try:
        say(f"topics {settings.topic_prefix}*, views in Redis and MongoDB database {settings.mongo_database!r}")
        if await operations.log_is_empty(container):
            if movielens is not None:
                with progress_bar("importing MovieLens into Kafka", None) as advance:
                    result = await operations.load_movielens(container, movielens, lambda _p, n: advance(n))
                say(f"imported MovieLens: {result}")
            else:
                result = await operations.load_sample(container, users=users)
                say(f"generated a sample service into Kafka: {result['catalog']} titles, "
                    f"{result['interactions']} interactions, {result['users']} users")
        version = None
        if await read_model(container.store, settings.default_model) is None:
            report = await operations.train(container, time_budget=budget, force=True, progress=say)
            say(f"model {report.model} {report.version} ({report.algorithm}): {report.reason}")
            version = report.version
        example = await _example_user(container)
    finally:
        await container.close()
    gateway = system.gateway_url
    say(f"waiting until {gateway} serves popularity and {settings.default_model!r} recommendations for {example}")
    await _served_through(gateway, settings.default_model, example, version, serve_timeout)
    say(f"ready in {operations.elapsed(started)} (`movieaugur status` shows every process). Try:")
    _print_tries(gateway, example)
    say("Ctrl-C ends the demo and leaves the system running; `movieaugur down` stops it.")
    await _until_interrupted(system)
    say(f"demo stopped; the system still serves {gateway}. Stop it with `movieaugur down` "
        "(`movieaugur down --services-only` keeps the stack).")


async def _served_through(gateway: str, model: str, user: str, version: str | None, timeout: float) -> None:
    """Poll the gateway until popularity is listed and the user's recommendations come from the
    model (no fallback header, of `version` if one was just trained) with catalog titles. The older
    routes ignore unknown query parameters, so a counter keeps NGINX's 5 s GET cache out of the way."""
    deadline = asyncio.get_running_loop().time() + timeout
    attempt = 0
    last = "no answer yet"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:
        while True:
            attempt += 1
            try:
                async with http.get(f"{gateway}/popularity/movie?demo_wait={attempt}") as response:
                    popular = await response.json() if response.status == 200 else None
                async with http.get(f"{gateway}/recommendations/{model}/users/{user}?demo_wait={attempt}") as response:
                    listed = await response.json() if response.status == 200 else None
                    headers = response.headers
                if not popular:
                    last = "popularity is still empty (projectors catching up?)"
                elif not listed or "X-Recommendation-Fallback" in headers:
                    last = "recommendations still fall back to popularity (Connect copying them?)"
                elif version is not None and headers.get("X-Model-Version") != version:
                    last = f"recommendations still of model version {headers.get('X-Model-Version')}"
                elif not listed[0].get("title"):
                    last = "recommendations have no catalog titles yet"
                else:
                    return
            except (aiohttp.ClientError, TimeoutError) as error:
                last = f"{type(error).__name__}: {error}"
            if asyncio.get_running_loop().time() > deadline:
                raise StackError(f"{gateway} did not serve recommendations within {timeout:.0f}s ({last}); "
                                 "see `movieaugur status` and the service logs it names")
            await asyncio.sleep(0.5)


async def _until_interrupted(system: System) -> None:
    """Wait for Ctrl-C (or SIGTERM); meanwhile say if a service process goes away."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    gone: set[str] = set()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 5.0)
        for name in sorted(set(await asyncio.to_thread(system.stopped)) - gone):
            say(f"[red]{name} stopped[/red] (its log: {system.stack.cfg.logs}/{name}.log); `movieaugur up` starts it again")
            gone.add(name)


async def _example_user(container: Container) -> str:
    async for logged in container.log.scan(INTERACTIONS, batch=1):
        if isinstance(logged.event, InteractionRecorded):
            return logged.event.user_id
    return "user-1"
