"""TMDB v3 ingestion: async client, pure mapping to catalog dicts, and a fake server for tests.

Public API (no Airflow imports anywhere, so DAG tasks and the demo call the same code):

- :class:`TmdbConfig` — credentials, base URL, timeout, retry, rate and concurrency knobs.
- :func:`collect_popular`, :func:`collect_metadata`, :func:`iter_metadata` — collection runs.
- :class:`TmdbClient` — the low-level client, for sharing one rate limit across calls.
- :func:`map_details`, :func:`map_popular` — pure mapping (``offline.tmdb.mapping``).
- ``offline.tmdb.fake_server.FakeTmdbServer`` — a local TMDB stand-in (imported lazily).
"""

from offline.tmdb.client import TmdbClient
from offline.tmdb.collect import Progress, ProgressCallback, collect_metadata, collect_popular, iter_metadata
from offline.tmdb.config import DEFAULT_ITEM_TYPES, TMDB_KINDS, TmdbConfig
from offline.tmdb.errors import (
    TmdbAuthError,
    TmdbError,
    TmdbHttpError,
    TmdbNotFound,
    TmdbRateLimited,
    TmdbResponseError,
    TmdbServerError,
)
from offline.tmdb.mapping import item_type_for, kind_for, map_details, map_popular

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
