"""Views in embedded SQLite: sorted sets and documents as two tables, tracking in eventsourcing's
tracking table, all written in one transaction per batch (exactly-once effect)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
from eventsourcing.persistence import IntegrityError, Tracking
from eventsourcing.sqlite import SQLiteTrackingRecorder

from movieaugur.adapters.sqlite_datastore import sqlite_datastore
from movieaugur.adapters.threads import BlockingPool
from projections.changes import Batch, DocPut, ScoreAdd, ScoreMax, ScoreRemove, StaleTracking, ViewStore

# Answers a sorted set's first page (`top` of one key) in order, without sorting the set.
_RANK_INDEX = "CREATE INDEX IF NOT EXISTS zset_rank ON zset (space, key, score DESC, member DESC)"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS zset (space TEXT, key TEXT, member TEXT, score REAL, "
    "PRIMARY KEY (space, key, member)) WITHOUT ROWID",
    _RANK_INDEX,
    "CREATE TABLE IF NOT EXISTS docs (space TEXT, key TEXT, body BLOB, PRIMARY KEY (space, key)) WITHOUT ROWID",
    # Applied event ids per projection and partition, with the offset where each took effect;
    # forgotten `horizon` offsets later (projections/changes.py: Effect).
    "CREATE TABLE IF NOT EXISTS guards (projection TEXT, source TEXT, guard TEXT, at INTEGER, "
    "PRIMARY KEY (projection, source, guard)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS guards_age ON guards (projection, source, at)",
)
# Record a guard unless it was recorded within the horizon; rowcount 0 means "a duplicate".
_GUARD = (
    "INSERT INTO guards VALUES (?, ?, ?, ?) ON CONFLICT (projection, source, guard) "
    "DO UPDATE SET at = excluded.at WHERE excluded.at - guards.at > ?"
)
_FORGET = "DELETE FROM guards WHERE projection = ? AND source = ? AND at < ?"
_ADD = (
    "INSERT INTO zset VALUES (?, ?, ?, ?) "
    "ON CONFLICT (space, key, member) DO UPDATE SET score = score + excluded.score"
)
_MAX = (
    "INSERT INTO zset VALUES (?, ?, ?, ?) "
    "ON CONFLICT (space, key, member) DO UPDATE SET score = MAX(score, excluded.score)"
)
# A replay of a long log grows the sorted sets and their score index past SQLite's default 2 MB
# page cache, after which every upsert reads its pages back from the OS.
_CACHE_KIB = 64 * 1024
_PUT = "INSERT OR REPLACE INTO docs VALUES (?, ?, ?)"
_REMOVE = "DELETE FROM zset WHERE space = ? AND key = ? AND member = ?"
_REMOVE_KEY = "DELETE FROM zset WHERE space = ? AND key = ?"


def tracking_name(projection: str, source: str) -> str:
    return f"{projection}:{source}"


class SQLiteViewStore(ViewStore):
    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.pool = BlockingPool("sqlite-views")
        # synchronous=NORMAL: in WAL mode a commit is still atomic, only the last commits before a
        # power loss may be undone, and a view's tracking rolls back with its changes, so the
        # projector resumes from an earlier consistent position and re-applies from the log. The
        # log itself keeps FULL: an acknowledged write is never lost.
        self.datastore = sqlite_datastore(str(self.path), cache_kib=_CACHE_KIB, synchronous="NORMAL")
        self.tracking = SQLiteTrackingRecorder(self.datastore)
        self.tracking.create_table()
        with self.datastore.transaction(commit=True) as cursor:
            self._forget_unbounded_guards(cursor)
            for statement in _SCHEMA:
                cursor.execute(statement)
        # Point reads (a key, a few members, the first page of one sorted set) take microseconds:
        # they run on the caller's thread on a read-only connection of their own, instead of paying
        # a thread hop each. WAL mode lets them read while a projector writes. Scans and
        # aggregations still go to the pool.
        self._reader = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._reader.execute("PRAGMA query_only = ON")

    @staticmethod
    def _forget_unbounded_guards(cursor: Any) -> None:
        """Views written before guards were bounded kept them in `seen`, without offsets. The
        views are derivable: empty them (and their tracking) so the projectors rebuild them."""
        cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'seen'")
        if cursor.fetchone():
            for table in ("zset", "docs", "tracking"):
                cursor.execute(f"DELETE FROM {table}")
            cursor.execute("DROP TABLE seen")

    # -- projector side ------------------------------------------------------------------------

    async def apply(self, projection: str, batch: Batch) -> None:
        await self.pool.run(self._apply, projection, batch)

    def _apply(self, projection: str, batch: Batch) -> None:
        try:
            with self.datastore.transaction(commit=True) as cursor:
                raw = cursor.sqlite_cursor
                source, horizon = batch.source, batch.horizon
                guarded = False
                for effect in batch.effects:
                    if effect.guard is not None:
                        guarded = True
                        raw.execute(_GUARD, (projection, source, effect.guard, effect.at, horizon))
                        if raw.rowcount == 0:
                            continue
                    for change in effect.changes:
                        if isinstance(change, ScoreAdd):
                            raw.execute(_ADD, (change.space, change.key, change.member, change.delta))
                        elif isinstance(change, ScoreMax):
                            raw.execute(_MAX, (change.space, change.key, change.member, change.score))
                        elif isinstance(change, DocPut):
                            raw.execute(_PUT, (change.space, change.key, orjson.dumps(change.doc)))
                        elif isinstance(change, ScoreRemove):
                            if change.member is None:
                                raw.execute(_REMOVE_KEY, (change.space, change.key))
                            else:
                                raw.execute(_REMOVE, (change.space, change.key, change.member))
                if guarded:
                    raw.execute(_FORGET, (projection, source, batch.guard_cutoff()))
                for source, next_offset in batch.next_offsets.items():
                    self.tracking._insert_tracking(  # same transaction as the view
                        cursor, Tracking(tracking_name(projection, source), next_offset - 1)
                    )
        except IntegrityError as error:
            raise StaleTracking(f"{projection}: positions {batch.next_offsets} already recorded") from error

    async def positions(self, projection: str) -> dict[str, int]:
        def read() -> dict[str, int]:
            with self.datastore.transaction(commit=False) as cursor:
                cursor.execute(
                    "SELECT application_name, notification_id FROM tracking WHERE application_name LIKE ?",
                    (f"{projection}:%",),
                )
                rows = cursor.fetchall()
            return {row[0].split(":", 1)[1]: row[1] + 1 for row in rows}

        return await self.pool.run(read)

    @contextlib.asynccontextmanager
    async def rebuilding_in_place(self, projection: str) -> AsyncIterator[None]:
        """A replay moves every score many times: without the rank index each upsert updates one
        B-tree instead of two, and the index is built once, sorted, at the end (also when the replay
        fails). Reads of other views in the same file answer meanwhile, sorting instead of walking
        the index; a process killed mid-replay leaves none until the store next starts (`_SCHEMA`)."""
        await self.pool.run(self._execute, "DROP INDEX IF EXISTS zset_rank")
        try:
            yield
        finally:
            await self.pool.run(self._execute, _RANK_INDEX)

    def _execute(self, statement: str) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(statement)

    async def drop(self, projection: str, spaces: Sequence[str]) -> None:
        def drop() -> None:
            with self.datastore.transaction(commit=True) as cursor:
                for space in spaces:
                    cursor.execute("DELETE FROM zset WHERE space = ?", (space,))
                    cursor.execute("DELETE FROM docs WHERE space = ?", (space,))
                cursor.execute("DELETE FROM guards WHERE projection = ?", (projection,))
                cursor.execute("DELETE FROM tracking WHERE application_name LIKE ?", (f"{projection}:%",))

        await self.pool.run(drop)

    # -- query side ----------------------------------------------------------------------------

    def _query(self, statement: str, params: Sequence[Any]) -> list[Any]:
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall()

    def _read_now(self, statement: str, params: Sequence[Any]) -> list[Any]:
        """A point read on the calling thread (see __init__)."""
        return self._reader.execute(statement, params).fetchall()

    async def top(
        self, space: str, keys: Mapping[str, float], offset: int, limit: int
    ) -> list[tuple[str, float]]:
        if not keys:
            return []
        if len(keys) == 1 and next(iter(keys.values())) == 1.0:
            statement = (
                "SELECT member, score FROM zset WHERE space = ? AND key = ? "
                "ORDER BY score DESC, member DESC LIMIT ? OFFSET ?"
            )
            params: list[Any] = [space, next(iter(keys)), limit, offset]
            if offset + limit <= 1000:  # an index range scan of one page: read it now
                return [(row[0], row[1]) for row in self._read_now(statement, params)]
        else:
            values = ",".join("(?, ?)" for _ in keys)
            statement = (
                f"WITH k(key, w) AS (VALUES {values}) "
                "SELECT member, SUM(score * k.w) AS s FROM zset JOIN k ON zset.key = k.key "
                "WHERE space = ? GROUP BY member ORDER BY s DESC, member DESC LIMIT ? OFFSET ?"
            )
            params = [x for pair in keys.items() for x in pair] + [space, limit, offset]
        rows = await self.pool.run(self._query, statement, params)
        return [(row[0], row[1]) for row in rows]

    async def revision(self, spaces: Sequence[str]) -> int:
        """SQLite's data_version on the read-only connection: it moves whenever another connection
        (the projectors', in this or any other process) commits to the views file."""
        return int(self._read_now("PRAGMA data_version", ())[0][0])

    async def score(self, space: str, key: str, member: str) -> float | None:
        rows = self._read_now("SELECT score FROM zset WHERE space = ? AND key = ? AND member = ?", (space, key, member))
        return rows[0][0] if rows else None

    def _lookup(self, select: str, params: list[Any], wanted: Sequence[str]) -> dict[str, Any]:
        """`select ... IN (...)` over `wanted` in chunks (SQLite's variable limit); row[0] -> row[1]."""
        found: dict[str, Any] = {}
        unique = list(dict.fromkeys(wanted))
        for i in range(0, len(unique), 900):
            chunk = unique[i : i + 900]
            statement = f"{select} IN ({','.join('?' * len(chunk))})"
            found.update((row[0], row[1]) for row in self._read_now(statement, [*params, *chunk]))
        return found

    async def scores(self, space: str, key: str, members: Sequence[str]) -> list[float | None]:
        found = self._lookup("SELECT member, score FROM zset WHERE space = ? AND key = ? AND member", [space, key], members)
        return [found.get(member) for member in members]

    async def get_docs(self, space: str, keys: Sequence[str]) -> list[dict[str, Any] | None]:
        if len(keys) == 1:  # the common case (one user's list, one item): a plain key lookup
            rows = self._read_now("SELECT body FROM docs WHERE space = ? AND key = ?", (space, keys[0]))
            return [orjson.loads(rows[0][0]) if rows else None]
        found = self._lookup("SELECT key, body FROM docs WHERE space = ? AND key", [space], keys)
        return [orjson.loads(found[key]) if key in found else None for key in keys]

    async def keys(self, space: str, prefix: str = "") -> list[str]:
        pattern = prefix.replace("%", r"\%").replace("_", r"\_") + "%"
        rows = await self.pool.run(
            self._query,
            "SELECT DISTINCT key FROM zset WHERE space = ? AND key LIKE ? ESCAPE '\\' "
            "UNION SELECT key FROM docs WHERE space = ? AND key LIKE ? ESCAPE '\\' ORDER BY 1",
            (space, pattern, space, pattern),
        )
        return [row[0] for row in rows]

    async def dump(self, spaces: Sequence[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for space in spaces:
            zrows = await self.pool.run(
                self._query, "SELECT key, member, score FROM zset WHERE space = ?", (space,)
            )
            drows = await self.pool.run(self._query, "SELECT key, body FROM docs WHERE space = ?", (space,))
            zsets: dict[str, dict[str, float]] = {}
            for key, member, score in zrows:
                zsets.setdefault(key, {})[member] = score
            out[space] = {"zsets": zsets, "docs": {key: orjson.loads(body) for key, body in drows}}
        return out

    async def close(self) -> None:
        self.pool.shutdown()
        self._reader.close()
        self.datastore.close()
