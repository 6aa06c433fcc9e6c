"""`movieaugur demo`: everything in one process, no servers, ready in well under a minute."""

from __future__ import annotations

import time
from pathlib import Path

from domain.events import INTERACTIONS, InteractionRecorded
from kernel.settings import Settings
from movieaugur import operations
from movieaugur.bootstrap import Container, bootstrap
from movieaugur.progress import progress_bar, say
from movieaugur.serve import serve_until_stopped
from projections.recommendations import read_model


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
        base = f"http://{settings.host}:{settings.port}"
        for path in (
            "/popularity/movie",
            f"/recommendations/default/users/{example}",
            f"/v1/users/{example}/recommendations?item_type=series&limit=5",
            "/v1/popularity/movie?window=7d&limit=5",
            "/docs",
        ):
            say(f"  curl '{base}{path}'")
        await serve_until_stopped(container, {"commands", "queries", "projectors"}, settings.port)
    finally:
        await container.close()


async def _example_user(container: Container) -> str:
    async for logged in container.log.scan(INTERACTIONS, batch=1):
        if isinstance(logged.event, InteractionRecorded):
            return logged.event.user_id
    return "user-1"
