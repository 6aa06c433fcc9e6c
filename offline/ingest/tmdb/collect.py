"""High-level collection runs: popular lists (paged) and catalog metadata (bounded fan-out).

These are what a DAG task calls. They own the policy the low-level client does not: how many
pages, how many detail fetches in flight, what to skip (malformed items, 404s) and what must
fail the run (a bad key; TMDB still failing after all retries, so Airflow retries the task).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import ValidationError

from offline.ingest.tmdb.client import TMDB_MAX_PAGES, TmdbClient
from offline.ingest.tmdb.config import TmdbConfig
from offline.ingest.tmdb.errors import TmdbNotFound, TmdbResponseError
from offline.ingest.tmdb.mapping import kind_for, map_details, map_popular
from offline.ingest.tmdb.models import PopularPage

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Progress:
    """Reported after each page or detail fetch; ``skipped`` counts malformed/missing items."""

    stage: str  # "popular" or "metadata"
    kind: str
    done: int
    total: int
    skipped: int = 0


ProgressCallback = Callable[[Progress], None]


@asynccontextmanager
async def _open(config: TmdbConfig, client: TmdbClient | None) -> AsyncIterator[TmdbClient]:
    """Reuse a caller's client (shared rate limit) or own one for the duration of the call."""
    if client is not None:
        yield client
        return
    async with TmdbClient(config) as owned:
        yield owned


async def _all_or_cancel(coros: Iterable[Awaitable[T]]) -> list[T]:
    """gather(), but the first failure cancels the siblings instead of leaving them running."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _parse_page(kind: str, page: int, raw: dict[str, Any]) -> PopularPage:
    try:
        return PopularPage.model_validate(raw)
    except ValidationError as exc:
        raise TmdbResponseError(f"/3/{kind}/popular page {page} is not a TMDB page: {exc}") from exc


async def _popular_for_kind(
    c: TmdbClient, kind: str, max_pages: int, progress: ProgressCallback | None
) -> dict[str, Any]:
    first = _parse_page(kind, 1, await c.popular_page(kind, 1))
    last = max(1, min(first.total_pages, max_pages, TMDB_MAX_PAGES))
    pages: dict[int, PopularPage] = {1: first}
    sem = asyncio.Semaphore(c.config.concurrency)

    def report() -> None:
        if progress:
            progress(Progress("popular", kind, len(pages), last))

    report()

    async def fetch(n: int) -> None:
        async with sem:
            pages[n] = _parse_page(kind, n, await c.popular_page(kind, n))
        report()

    await _all_or_cancel(fetch(n) for n in range(2, last + 1))
    ranked = (raw for n in sorted(pages) for raw in pages[n].results)
    record = map_popular(kind, enumerate(ranked, start=1), c.config.item_types)
    log.info("TMDB %s popular: %d pages, %d items", kind, last, len(record["items"]))
    return record


async def collect_popular(
    config: TmdbConfig,
    kinds: Sequence[str] = ("movie", "tv"),
    max_pages: int = 5,
    *,
    progress: ProgressCallback | None = None,
    client: TmdbClient | None = None,
) -> list[dict[str, Any]]:
    """One popularity record per kind, pages 1..min(total_pages, max_pages) concatenated.

    Record: ``{"item_type", "source": "tmdb", "items": [{"item_id", "score", "rank"}],
    "observed_at"}`` (see :func:`offline.ingest.tmdb.mapping.map_popular`).
    """
    if max_pages < 1:
        raise ValueError("max_pages must be >= 1")
    async with _open(config, client) as c:
        return [await _popular_for_kind(c, kind, max_pages, progress) for kind in kinds]


def _targets(
    config: TmdbConfig,
    ids_by_kind: Mapping[str, Iterable[int | str]] | None,
    popular: Sequence[Mapping[str, Any]] | None,
) -> list[tuple[str, str]]:
    """(kind, id) pairs in first-seen order, deduplicated: explicit ids, then popular lists."""
    pairs: list[tuple[str, str]] = []
    for kind, ids in (ids_by_kind or {}).items():
        pairs.extend((kind, str(i)) for i in ids)
    for record in popular or ():
        kind = kind_for(record["item_type"], config.item_types)
        pairs.extend((kind, str(item["item_id"])) for item in record["items"])
    return list(dict.fromkeys(pairs))


async def _iter_indexed(
    config: TmdbConfig,
    ids_by_kind: Mapping[str, Iterable[int | str]] | None,
    popular: Sequence[Mapping[str, Any]] | None,
    progress: ProgressCallback | None,
    client: TmdbClient | None,
) -> AsyncIterator[tuple[int, dict[str, Any]]]:
    targets = _targets(config, ids_by_kind, popular)
    async with _open(config, client) as c:
        sem = asyncio.Semaphore(config.concurrency)

        async def fetch(index: int, kind: str, tmdb_id: str) -> tuple[int, str, dict[str, Any] | None]:
            async with sem:
                try:
                    raw = await c.details(kind, tmdb_id)
                except TmdbNotFound:
                    log.warning("skipping TMDB %s id=%s: not found (404)", kind, tmdb_id)
                    return index, kind, None
            return index, kind, map_details(kind, raw, config.item_types)

        tasks = [asyncio.ensure_future(fetch(i, k, t)) for i, (k, t) in enumerate(targets)]
        done = skipped = 0
        try:
            for next_done in asyncio.as_completed(tasks):
                index, kind, entry = await next_done
                done += 1
                skipped += entry is None
                if progress:
                    progress(Progress("metadata", kind, done, len(targets), skipped))
                if entry is not None:
                    yield index, entry
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        log.info("TMDB metadata: %d fetched, %d skipped", done - skipped, skipped)


async def iter_metadata(
    config: TmdbConfig,
    ids_by_kind: Mapping[str, Iterable[int | str]] | None = None,
    *,
    popular: Sequence[Mapping[str, Any]] | None = None,
    progress: ProgressCallback | None = None,
    client: TmdbClient | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Catalog entries as their details arrive (completion order), at most ``concurrency`` in flight.

    Ids come from ``ids_by_kind`` (``{"movie": [550], "tv": [1399]}``, TMDB kinds) and/or the
    records of :func:`collect_popular`. Malformed details and 404s are skipped with a warning;
    an auth error or a request still failing after all retries ends the iteration with it.
    """
    async for _, entry in _iter_indexed(config, ids_by_kind, popular, progress, client):
        yield entry


async def collect_metadata(
    config: TmdbConfig,
    ids_by_kind: Mapping[str, Iterable[int | str]] | None = None,
    *,
    popular: Sequence[Mapping[str, Any]] | None = None,
    progress: ProgressCallback | None = None,
    client: TmdbClient | None = None,
) -> list[dict[str, Any]]:
    """Like :func:`iter_metadata` but a list in input order (deterministic for snapshots)."""
    indexed = [pair async for pair in _iter_indexed(config, ids_by_kind, popular, progress, client)]
    return [entry for _, entry in sorted(indexed, key=lambda pair: pair[0])]
