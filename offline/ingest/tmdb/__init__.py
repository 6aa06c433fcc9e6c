"""TMDB v3 ingestion: async client and pure mapping to catalog dicts.

Public API (no Airflow imports anywhere, so DAG tasks and the demo call the same code):

- :class:`TmdbConfig` — credentials, base URL, timeout, retry, rate and concurrency knobs.
- :func:`collect_popular`, :func:`collect_metadata`, :func:`iter_metadata` — collection runs.
- :class:`TmdbClient` — the low-level client, for sharing one rate limit across calls.
- :func:`map_details`, :func:`map_popular` — pure mapping (``offline.ingest.tmdb.mapping``).

A local TMDB stand-in for tests and the demo is ``testing.fake_tmdb.server.FakeTmdbServer`` (outside
the production packages).
"""

from offline.ingest.tmdb.client import TmdbClient
from offline.ingest.tmdb.collect import Progress, ProgressCallback, collect_metadata, collect_popular, iter_metadata
from offline.ingest.tmdb.config import DEFAULT_ITEM_TYPES, TMDB_KINDS, TmdbConfig
from offline.ingest.tmdb.errors import (
    TmdbAuthError,
    TmdbError,
    TmdbHttpError,
    TmdbNotFound,
    TmdbRateLimited,
    TmdbResponseError,
    TmdbServerError,
)
from offline.ingest.tmdb.mapping import item_type_for, kind_for, map_details, map_popular

__all__ = [
    "DEFAULT_ITEM_TYPES",
    "TMDB_KINDS",
    "Progress",
    "ProgressCallback",
    "TmdbAuthError",
    "TmdbClient",
    "TmdbConfig",
    "TmdbError",
    "TmdbHttpError",
    "TmdbNotFound",
    "TmdbRateLimited",
    "TmdbResponseError",
    "TmdbServerError",
    "collect_metadata",
    "collect_popular",
    "item_type_for",
    "iter_metadata",
    "kind_for",
    "map_details",
    "map_popular",
]
