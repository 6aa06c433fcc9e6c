"""eventsourcing's SQLite datastore with a real statement cache.

Why this exists: eventsourcing 9.5's connection pool opens its sqlite3 connections with
`cached_statements=True`, which sqlite3 reads as a cache of *one* prepared statement. Every path
that alternates statements re-prepares each one on every execute: a view's apply (guard insert and
two upserts per event) ran at 12.8 µs/event instead of 6.1, and every read lost ~4 µs because
BEGIN/COMMIT evicted its SELECT (BENCHMARKS.md, "Problems found", 1). The pool below opens its
connections the same way (auto-commit so the recorder's explicit BEGIN works, WAL for files, rows
as sqlite3.Row, the datastore's lock timeout) with sqlite3's usual 128-statement cache, and a page
cache sized by the caller (a writer whose indexes outgrow SQLite's 2 MB default reads pages back
from the OS on every batch). Everything
else (recorders, transactions, pooling) stays eventsourcing's.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from eventsourcing.sqlite import SQLiteConnection, SQLiteConnectionPool, SQLiteDatastore

STATEMENT_CACHE = 128
DEFAULT_LOCK_TIMEOUT = 5


class _CachingPool(SQLiteConnectionPool):
    #: Page cache per connection in KiB (SQLite's default is 2 MB): set by `sqlite_datastore`.
    cache_kib = 0
    #: PRAGMA synchronous for each connection ("" keeps SQLite's FULL): set by `sqlite_datastore`.
    synchronous = ""

    def _create_connection(self) -> SQLiteConnection:
        connection = sqlite3.connect(
            self.db_name,
            uri=True,
            check_same_thread=False,
            isolation_level=None,  # auto-commit: transactions are the recorder's explicit BEGIN
            cached_statements=STATEMENT_CACHE,
            timeout=self.lock_timeout or DEFAULT_LOCK_TIMEOUT,
        )
        if not self.is_sqlite_memory_mode and not self.is_journal_mode_wal:
            if connection.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                connection.execute("PRAGMA journal_mode=WAL")
            self.is_journal_mode_wal = True
        if self.cache_kib:
            connection.execute(f"PRAGMA cache_size = -{self.cache_kib}")
        if self.synchronous:
            connection.execute(f"PRAGMA synchronous = {self.synchronous}")
        connection.row_factory = sqlite3.Row
        return SQLiteConnection(sqlite_conn=connection, max_age=self.max_age)


def sqlite_datastore(
    path: str, lock_timeout: int = 30, cache_kib: int = 0, synchronous: str = "", **options: Any
) -> SQLiteDatastore:
    """A SQLiteDatastore whose connections cache 128 prepared statements and, with `cache_kib`,
    that many KiB of pages (allocated as pages are read: a small database costs no more); with
    `synchronous` (e.g. "NORMAL"), that durability level instead of SQLite's FULL."""
    datastore = SQLiteDatastore(path, lock_timeout=lock_timeout, **options)
    datastore.pool = _CachingPool(db_name=path, lock_timeout=lock_timeout)
    datastore.pool.cache_kib = cache_kib
    datastore.pool.synchronous = synchronous
    return datastore
