"""Import a MovieLens dataset (the ml-latest-small layout) into the log.

ratings.csv becomes `rating` interactions, movies.csv (+ links.csv) becomes catalog entries. Event ids
are derived from the rows (user, movie, timestamp; or the catalog content), so importing the same
files again appends nothing new.
"""

from __future__ import annotations

import csv
import re
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from domain.events import InteractionRecorded, ItemCatalogued, content_event_id, from_unix
from domain.ports import AppendResult, EventLog

_YEAR = re.compile(r"\s*\((\d{4})\)\s*$")
NO_GENRES = "(no genres listed)"
ITEM_TYPE = "movie"
#: Events per append unless the caller knows better (movieaugur.operations.import_batch).
BATCH_SIZE = 10_000


class DatasetError(ValueError):
    """The folder does not look like a MovieLens dataset; the message says what is missing."""


def _require(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise DatasetError(f"{path} is missing: point at a folder laid out like ml-latest-small")
    return path


def require_dataset(folder: Path) -> None:
    """DatasetError unless the folder has the files an import reads (checked before any work)."""
    for name in ("ratings.csv", "movies.csv"):
        _require(folder, name)


def _rows(path: Path) -> Iterator[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        yield from csv.DictReader(handle)


def catalog_events(folder: Path, item_type: str = ITEM_TYPE) -> Iterator[ItemCatalogued]:
    links: dict[str, dict[str, str]] = {}
    if (folder / "links.csv").is_file():
        for row in _rows(folder / "links.csv"):
            ids = {}
            if row.get("tmdbId"):
                ids["tmdb"] = row["tmdbId"]
            if row.get("imdbId"):
                ids["imdb"] = f"tt{row['imdbId']}"
            links[row["movieId"]] = ids
    for row in _rows(_require(folder, "movies.csv")):
        title = row["title"].strip()
        match = _YEAR.search(title)
        year = match.group(1) if match else None
        genres = [g for g in row["genres"].split("|") if g and g != NO_GENRES]
        payload: dict[str, Any] = {
            "item_type": item_type,
            "item_id": row["movieId"],
            "title": _YEAR.sub("", title) if match else title,
            "release_date": year,
            "categories": genres or None,
            "links": links.get(row["movieId"]) or None,
        }
        yield ItemCatalogued.new(event_id=content_event_id("movielens-item", payload), source="movielens", **payload)


def user_shard(user_id: str, shards: int) -> int:
    """Which of `shards` importers takes this user's rows: stable across processes (crc32, not
    Python's salted hash), and all of one user's rows go to one importer, in file order."""
    return zlib.crc32(user_id.encode()) % shards


def rating_events(folder: Path, item_type: str = ITEM_TYPE, shard: tuple[int, int] = (0, 1)) -> Iterator[InteractionRecorded]:
    """`shard` = (k, n): only the rows of users with user_shard(user, n) == k."""
    k, n = shard
    # Plain rows, columns found by name once: a dict per row is a fifth of parsing a 20M-row file.
    with _require(folder, "ratings.csv").open(newline="", encoding="utf-8") as handle:
        rows = csv.reader(handle)
        header = next(rows, [])
        try:
            u, m, r, t = (header.index(name) for name in ("userId", "movieId", "rating", "timestamp"))
        except ValueError as missing:
            raise DatasetError(f"ratings.csv lacks a column ({missing}): expected userId,movieId,rating,timestamp") from None
        for row in rows:
            if n > 1 and user_shard(row[u], n) != k:
                continue
            yield InteractionRecorded.new(
                event_id=f"movielens:{row[u]}:{row[m]}:{row[t]}",
                timestamp=from_unix(int(row[t])),
                user_id=row[u],
                item_type=item_type,
                item_id=row[m],
                action="rating",
                value=float(row[r]),
                source="movielens",
            )


async def import_movielens(
    log: EventLog,
    folder: Path | str,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[str, int], None] | None = None,
    item_type: str = ITEM_TYPE,
    shard: tuple[int, int] = (0, 1),
) -> dict[str, AppendResult]:
    """Append the catalog, then the ratings, in batches; report counts per part.

    With `shard` = (k, n) this is one of n importers (movieaugur/parallel_import.py): it appends
    the ratings of its users only, and the catalog only if k == 0."""
    folder = Path(folder)
    results = {}
    parts: list[tuple[str, Iterator[Any]]] = [("ratings", rating_events(folder, item_type, shard))]
    if shard[0] == 0:
        parts.insert(0, ("catalog", catalog_events(folder, item_type)))
    for part, events in parts:
        appended = duplicates = 0
        batch: list = []
        for event in events:
            batch.append(event)
            if len(batch) >= batch_size:
                result = await log.append(batch)
                appended, duplicates = appended + result.appended, duplicates + result.duplicates
                if progress:
                    progress(part, len(batch))
                batch = []
        if batch:
            result = await log.append(batch)
            appended, duplicates = appended + result.appended, duplicates + result.duplicates
            if progress:
                progress(part, len(batch))
        results[part] = AppendResult(appended, duplicates)
    return results
