"""Pure functions from TMDB JSON to MovieAugur's plain-dict catalog and popularity records.

No I/O here, so the mapping can be tested and reused (DAGs, the demo, backfills) without a
server. A malformed item yields ``None`` plus one ``logging.warning`` naming the item and the
problem: one bad record from an outside source must never fail a whole collection run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from offline.ingest.tmdb.config import DEFAULT_ITEM_TYPES, TMDB_KINDS
from offline.ingest.tmdb.models import MovieDetails, PopularItem, TvDetails

log = logging.getLogger(__name__)

SOURCE = "tmdb"


def item_type_for(kind: str, item_types: Mapping[str, str] = DEFAULT_ITEM_TYPES) -> str:
    """Our item type for a TMDB kind (``"tv"`` -> ``"series"`` by default)."""
    if kind not in TMDB_KINDS:
        raise ValueError(f"unknown TMDB kind {kind!r}; known: {TMDB_KINDS}")
    try:
        return item_types[kind]
    except KeyError:
        raise ValueError(f"no item type configured for TMDB kind {kind!r}") from None


def kind_for(item_type: str, item_types: Mapping[str, str] = DEFAULT_ITEM_TYPES) -> str:
    """Inverse of :func:`item_type_for`, for going from a popularity record back to TMDB."""
    for kind, name in item_types.items():
        if name == item_type:
            return kind
    raise ValueError(f"item type {item_type!r} maps to no TMDB kind in {dict(item_types)}")


def _describe_errors(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()[:5]
    )


def _item_label(raw: Any) -> str:
    if isinstance(raw, dict):
        return f"id={raw.get('id')!r} title={raw.get('title', raw.get('name'))!r}"
    return f"non-object {type(raw).__name__}"


def map_details(kind: str, raw: Any, item_types: Mapping[str, str] = DEFAULT_ITEM_TYPES) -> dict[str, Any] | None:
    """Map a details payload (with ``keywords,credits`` appended) to a catalog entry.

    Returns ``{"item_type", "item_id", "title", "description", "release_date"?, "categories",
    "keywords", "creators", "source"}``; ``release_date`` is omitted when TMDB has none.
    Creators are directors for movies and ``created_by`` for TV (TV episodes have many
    directors, the show's creators are what people search for).
    """
    item_type = item_type_for(kind, item_types)
    try:
        details: MovieDetails | TvDetails = (
            MovieDetails.model_validate(raw) if kind == "movie" else TvDetails.model_validate(raw)
        )
    except ValidationError as exc:
        log.warning("skipping malformed TMDB %s details (%s): %s", kind, _item_label(raw), _describe_errors(exc))
        return None

    if isinstance(details, MovieDetails):
        title, release = details.title, details.release_date
        keywords = details.keywords.keywords if details.keywords else []
        crew = details.credits.crew if details.credits else []
        creators = [member.name for member in crew if member.job == "Director"]
    else:
        title, release = details.name, details.first_air_date
        keywords = details.keywords.results if details.keywords else []
        creators = [person.name for person in details.created_by]

    entry: dict[str, Any] = {
        "item_type": item_type,
        "item_id": str(details.id),
        "title": title,
        "description": details.overview or "",
        "categories": [genre.name for genre in details.genres],
        "keywords": [kw.name for kw in keywords],
        "creators": list(dict.fromkeys(creators)),
        "source": SOURCE,
    }
    if release:
        entry["release_date"] = release
    return entry


def map_popular(
    kind: str,
    ranked_items: Iterable[tuple[int, Any]],
    item_types: Mapping[str, str] = DEFAULT_ITEM_TYPES,
    observed_at: int | None = None,
) -> dict[str, Any]:
    """Map ``(rank, raw popular item)`` pairs to one popularity record for ``kind``.

    Rank is TMDB's list position (1-based over all pages), so skipping a malformed item does
    not shift the others. A title seen twice (popular lists drift while we page) keeps its
    first, better rank.
    """
    item_type = item_type_for(kind, item_types)
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    for rank, raw in ranked_items:
        try:
            item = PopularItem.model_validate(raw)
        except ValidationError as exc:
            log.warning("skipping malformed TMDB %s popular item at rank %d (%s): %s",
                        kind, rank, _item_label(raw), _describe_errors(exc))
            continue
        item_id = str(item.id)
        if item_id in seen:
            continue
        seen.add(item_id)
        items.append({"item_id": item_id, "score": item.popularity, "rank": rank})
    return {
        "item_type": item_type,
        "source": SOURCE,
        "items": items,
        "observed_at": int(time.time()) if observed_at is None else observed_at,
    }
