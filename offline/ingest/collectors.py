"""Collection runs that turn TMDB's answers into events in the log.

The TMDB client (offline/ingest/tmdb) knows the API; this module knows the domain: catalog entries become
ItemCatalogued events (content-derived ids, so collecting the same metadata twice appends nothing
new), popular lists become PopularityObserved events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain.events import ItemCatalogued, PopularityObserved, content_event_id, from_unix
from domain.ports import AppendResult, EventLog
from kernel.settings import Settings
from offline.ingest.tmdb import TmdbConfig, collect_metadata, collect_popular

CATALOG_FIELDS = ("title", "description", "release_date", "categories", "keywords", "creators")


def catalog_event(entry: dict[str, Any]) -> ItemCatalogued:
    payload = {
        "item_type": entry["item_type"],
        "item_id": str(entry["item_id"]),
        **{name: entry.get(name) for name in CATALOG_FIELDS},
        "links": {"tmdb": str(entry["item_id"])},
    }
    return ItemCatalogued.new(event_id=content_event_id("tmdb-item", payload), source="tmdb", **payload)


def popularity_event(observed: dict[str, Any]) -> PopularityObserved:
    items = [{"item_id": str(i["item_id"]), "score": float(i["score"])} for i in observed["items"]]
    payload = {"source": observed.get("source", "tmdb"), "item_type": observed["item_type"], "items": items}
    return PopularityObserved.new(
        event_id=content_event_id("tmdb-popular", {**payload, "observed_at": observed["observed_at"]}),
        timestamp=from_unix(observed["observed_at"]),
        **payload,
    )


async def collect_popularity_into(
    log: EventLog, settings: Settings, config: TmdbConfig | None = None, progress: Callable[[Any], None] | None = None
) -> tuple[AppendResult, list[dict[str, Any]]]:
    config = config or TmdbConfig.from_settings(settings)
    observed = await collect_popular(config, kinds=tuple(config.item_types), max_pages=settings.tmdb_max_pages, progress=progress)
    result = await log.append([popularity_event(o) for o in observed])
    return result, observed


async def collect_metadata_into(
    log: EventLog, settings: Settings, config: TmdbConfig | None = None, progress: Callable[[Any], None] | None = None
) -> AppendResult:
    """Metadata of every title on the current popular lists (the ones users are about to see)."""
    config = config or TmdbConfig.from_settings(settings)
    observed = await collect_popular(config, kinds=tuple(config.item_types), max_pages=settings.tmdb_max_pages)
    entries = await collect_metadata(config, popular=observed, progress=progress)
    return await log.append([catalog_event(e) for e in entries])
