"""A columnar snapshot of the interactions stream, kept up to date from the log, for training.

Why: training reads the whole interactions stream on every run. Through the log port that means
decoding every event into a Python object and building the matrix from Python lists: fine for a
few hundred thousand events, minutes and gigabytes for tens of millions. The snapshot keeps the
raw interactions as Parquet segments (pyarrow) and appends only what the log gained since the last
segment; training then builds the matrix from columns with numpy in a second or two.

Layout of the folder (`settings.snapshot_dir`, default `<data_dir>/snapshot/interactions/`):

- `p<partition>-<start>-<end>.parquet`: one segment, the interactions of one log partition at
  offsets [start, end) (the file name names the range it covers);
- `manifest.json`: the segments that make up the snapshot and, per partition, the offset the next
  update reads from. It is replaced atomically (temp file + `os.replace`) *after* its segment is in
  place, so the manifest is the one commit point: a builder killed anywhere leaves either the old
  manifest (the new segment, if written, is an orphan that the next run deletes and writes again)
  or the new one. No range is ever counted twice or skipped (exactly once by manifest).
- `.lock`: builders take it exclusively, loaders shared, so a loader never sees a half-update.

What is stored is the raw fact, not its weight: event_id, user_id, item_key, action, value,
occurred_at, source and the log position (partition, offset). Action weights are configuration and
a later redaction changes what earlier events count for, so weights, redactions, time decay and
deduplication by event_id are applied when the matrix is loaded (vectorised, `load_matrix`), by
exactly the rules of `interaction_matrix.load_interactions` (the tests compare both matrices).

The snapshot is derived data: delete the folder and the next update rebuilds the same rows from the
log. An update refuses (`SnapshotMismatch`) a snapshot that is ahead of the log or whose last event
is not the log's event at that offset (a snapshot left over from another log).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from domain.events import INTERACTIONS, REDACTIONS, EventsRedacted, InteractionRecorded
from domain.ports import EventLog
from domain.redactions import Redactions
from domain.weights import ActionWeights
from offline.training.interaction_matrix import InteractionMatrix, pair_matrix

MANIFEST = "manifest.json"
LOCK = ".lock"
FORMAT = 1
#: Events per segment at most: bounds the builder's memory (it holds one segment's rows as Python
#: objects before writing) while keeping segments few.
SEGMENT_ROWS = 500_000
READ_BATCH = 5000
_SEGMENT_NAME = re.compile(r"^p(\d+)-(\d+)-(\d+)\.parquet$")

_DICT = pa.dictionary(pa.int32(), pa.string())
SCHEMA = pa.schema([
    ("partition", pa.int32()),
    ("offset", pa.int64()),
    ("event_id", pa.string()),
    ("user_id", _DICT),
    ("item_key", _DICT),
    ("action", _DICT),
    ("value", pa.float64()),  # float64: the weight must be computed from the very value the log holds
    ("occurred_at", pa.int64()),  # unix seconds, as InteractionRecorded.occurred_at
    ("source", _DICT),
])
COLUMNS = tuple(SCHEMA.names)
#: What the matrix needs (rows are already in log order: segments are read in (partition, start) order).
MATRIX_COLUMNS = tuple(c for c in COLUMNS if c not in ("partition", "offset"))


class SnapshotMismatch(RuntimeError):
    """The snapshot was not built from this log (or the log lost events); delete the folder to rebuild."""


class SnapshotMissing(FileNotFoundError):
    """No snapshot has been built in this folder yet."""


# -- the manifest ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    file: str
    partition: int
    start: int
    end: int
    rows: int

    @staticmethod
    def name_for(partition: int, start: int, end: int) -> str:
        return f"p{partition:04d}-{start:020d}-{end:020d}.parquet"


@dataclass
class Manifest:
    """What the snapshot holds: its segments, and per partition where the next update starts."""

    stream: str = INTERACTIONS
    positions: dict[int, int] = field(default_factory=dict)
    # Per partition the (offset, event_id) of the last event read: recognises the log next time.
    last: dict[int, tuple[int, str]] = field(default_factory=dict)
    segments: list[Segment] = field(default_factory=list)

    @property
    def events(self) -> int:
        return sum(s.rows for s in self.segments)

    def sources(self) -> dict[str, int]:
        """Positions as the projections name them: "interactions/0" → next offset."""
        return {f"{self.stream}/{p}": end for p, end in sorted(self.positions.items())}

    def as_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "stream": self.stream,
            "positions": {str(p): end for p, end in sorted(self.positions.items())},
            "last": {str(p): [off, eid] for p, (off, eid) in sorted(self.last.items())},
            "segments": [vars(s) for s in self.segments],
        }

    @classmethod
    def read(cls, folder: Path) -> Manifest | None:
        path = folder / MANIFEST
        if not path.is_file():
            return None
        doc = json.loads(path.read_text())
        if doc.get("format") != FORMAT:
            raise SnapshotMismatch(f"{path}: snapshot format {doc.get('format')}, expected {FORMAT}; delete the folder to rebuild")
        return cls(
            stream=doc["stream"],
            positions={int(p): int(end) for p, end in doc["positions"].items()},
            last={int(p): (int(off), str(eid)) for p, (off, eid) in doc.get("last", {}).items()},
            segments=[Segment(**s) for s in doc["segments"]],
        )

    def write(self, folder: Path, checkpoint: Callable[[str], None]) -> None:
        """Atomically: a reader sees the old manifest or the new one, never a torn one."""
        temp = folder / f".{MANIFEST}.tmp"
        with temp.open("w") as handle:
            json.dump(self.as_json(), handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        checkpoint("manifest-tmp")
        os.replace(temp, folder / MANIFEST)
        _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _no_checkpoint(_stage: str) -> None:
    return None


def _lock_file(folder: Path) -> Any:
    folder.mkdir(parents=True, exist_ok=True)
    return (folder / LOCK).open("a")


@contextlib.asynccontextmanager
async def _locked(folder: Path, exclusive: bool) -> AsyncIterator[None]:
    """flock on `<folder>/.lock` (builders exclusive, loaders shared), polled so the loop never blocks."""
    handle = _lock_file(folder)
    try:
        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        while True:
            try:
                fcntl.flock(handle.fileno(), mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(0.1)
        yield
    finally:
        handle.close()  # releases the lock


# -- building -------------------------------------------------------------------------------------


@dataclass
class BuildReport:
    appended: int  # interactions added to the snapshot by this update
    segments: int  # segment files written
    orphans: int  # files of an interrupted update removed first
    positions: dict[str, int]  # "interactions/<p>" → next offset, i.e. the snapshot covers [0, end)
    events: int  # interactions in the whole snapshot
    seconds: float


class _Rows:
    """One segment's columns as they are read."""

    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {name: [] for name in COLUMNS}

    def __len__(self) -> int:
        return len(self.columns["offset"])

    def add(self, partition: int, offset: int, event: InteractionRecorded) -> None:
        c = self.columns
        c["partition"].append(partition)
        c["offset"].append(offset)
        c["event_id"].append(event.event_id)
        c["user_id"].append(event.user_id)
        c["item_key"].append(event.item_key)
        c["action"].append(event.action)
        c["value"].append(event.value)
        c["occurred_at"].append(event.occurred_at)
        c["source"].append(event.source)

    def table(self) -> pa.Table:
        return table_of(self.columns)


def table_of(columns: dict[str, Any]) -> pa.Table:
    """A segment table from plain columns (lists or numpy arrays), in the snapshot's schema."""
    arrays = []
    for name in COLUMNS:
        kind = SCHEMA.field(name).type
        if pa.types.is_dictionary(kind):
            arrays.append(pa.array(columns[name], type=pa.string()).dictionary_encode())
        else:
            arrays.append(pa.array(columns[name], type=kind))
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def write_segment(folder: Path, table: pa.Table, partition: int, start: int, end: int,
                  checkpoint: Callable[[str], None] = _no_checkpoint) -> Segment:
    """Write one segment file (temp file, then renamed into place). Not yet part of the snapshot:
    that happens when a manifest naming it is written."""
    name = Segment.name_for(partition, start, end)
    temp = folder / f".{name}.tmp"
    pq.write_table(table, temp, compression="zstd")
    with temp.open("rb") as handle:
        os.fsync(handle.fileno())
    checkpoint("segment-tmp")
    os.replace(temp, folder / name)
    checkpoint("segment")
    return Segment(name, partition, start, end, table.num_rows)


def remove_orphans(folder: Path, manifest: Manifest) -> int:
    """Delete what an interrupted update left: temp files and segments no manifest names."""
    keep = {s.file for s in manifest.segments} | {MANIFEST, LOCK}
    removed = 0
    for path in folder.iterdir():
        if path.name not in keep and (path.name.startswith(".") or _SEGMENT_NAME.match(path.name)):
            path.unlink()
            removed += 1
    return removed


class SnapshotBuilder:
    """Appends to the snapshot what the log's interactions stream gained since the last update."""

    def __init__(
        self,
        folder: Path | str,
        log: EventLog,
        read_batch: int = READ_BATCH,
        segment_rows: int = SEGMENT_ROWS,
        checkpoint: Callable[[str], None] | None = None,
    ):
        self.folder = Path(folder)
        self.log = log
        self.read_batch = max(1, read_batch)
        self.segment_rows = max(1, segment_rows)
        # Called at each step of an update with its name ("read", "segment-tmp", "segment",
        # "manifest-tmp", "manifest"): the tests raise from it to kill the builder anywhere.
        self.checkpoint = checkpoint or _no_checkpoint

    async def update(
        self, until: dict[int, int] | None = None, progress: Callable[[int], None] | None = None
    ) -> BuildReport:
        """Read every partition up to its end offset as of this call (or `until`) and commit."""
        started = time.perf_counter()
        async with _locked(self.folder, exclusive=True):
            manifest = Manifest.read(self.folder) or Manifest()
            orphans = remove_orphans(self.folder, manifest)
            ends = dict(until) if until is not None else await self.log.end_offsets(INTERACTIONS)
            await self._check_same_log(manifest, ends)
            appended = segments = 0
            for partition, end in sorted(ends.items()):
                a, s = await self._partition(manifest, partition, end, progress)
                appended, segments = appended + a, segments + s
            # Partitions with nothing to read yet, and a first update of an empty log, are recorded too.
            known = Manifest.read(self.folder)
            for partition in ends:
                manifest.positions.setdefault(partition, 0)
            if known is None or known.positions != manifest.positions:
                manifest.write(self.folder, self.checkpoint)
        return BuildReport(appended, segments, orphans, manifest.sources(), manifest.events, time.perf_counter() - started)

    async def _check_same_log(self, manifest: Manifest, ends: dict[int, int]) -> None:
        for partition, position in manifest.positions.items():
            if position > ends.get(partition, 0):
                raise SnapshotMismatch(
                    f"{self.folder} covers {INTERACTIONS}/{partition} up to offset {position}, but the log ends at "
                    f"{ends.get(partition, 0)}: it was built from another log. Delete the folder to rebuild it."
                )
        for partition, (offset, event_id) in manifest.last.items():
            result = await self.log.read(INTERACTIONS, partition, offset, 1)
            found = result.events[0] if result.events else None
            # Only a different event at the very same offset proves another log (retention may have
            # deleted the old one: then the read starts later and says nothing).
            if found is not None and found.position.offset == offset and found.event.event_id != event_id:
                raise SnapshotMismatch(
                    f"{self.folder}: the log's event at {INTERACTIONS}/{partition}@{offset} is "
                    f"{found.event.event_id!r}, the snapshot's was {event_id!r}: it was built from another log. "
                    "Delete the folder to rebuild it."
                )

    async def _partition(
        self, manifest: Manifest, partition: int, end: int, progress: Callable[[int], None] | None
    ) -> tuple[int, int]:
        start = manifest.positions.get(partition, 0)
        rows = _Rows()
        segment_start = position = start
        last = manifest.last.get(partition)
        appended = written = 0
        while position < end:
            result = await self.log.read(INTERACTIONS, partition, position, self.read_batch)
            if result.next_offset <= position:
                break  # nothing more to read right now (the end moved back?): commit what we have
            before = len(rows)
            for logged in result.events:
                offset = logged.position.offset
                if offset >= end:
                    break
                last = (offset, logged.event.event_id)
                if isinstance(logged.event, InteractionRecorded):
                    rows.add(partition, offset, logged.event)
            position = min(result.next_offset, end)
            self.checkpoint("read")
            if progress:
                progress(len(rows) - before)
            if len(rows) >= self.segment_rows:
                appended += len(rows)
                written += self._commit(manifest, partition, rows, segment_start, position, last)
                rows, segment_start = _Rows(), position
        if position > segment_start:
            appended += len(rows)
            written += self._commit(manifest, partition, rows, segment_start, position, last)
        return appended, written

    def _commit(
        self, manifest: Manifest, partition: int, rows: _Rows, start: int, end: int, last: tuple[int, str] | None
    ) -> int:
        """Segment file first, then the manifest that names it (the commit point)."""
        written = 0
        if len(rows):
            manifest.segments.append(write_segment(self.folder, rows.table(), partition, start, end, self.checkpoint))
            written = 1
        manifest.positions[partition] = end
        if last is not None:
            manifest.last[partition] = last
        manifest.write(self.folder, self.checkpoint)
        self.checkpoint("manifest")
        return written


async def update_snapshot(
    folder: Path | str, log: EventLog, progress: Callable[[int], None] | None = None, **options: Any
) -> BuildReport:
    return await SnapshotBuilder(folder, log, **options).update(progress=progress)


# -- loading --------------------------------------------------------------------------------------


def segment_paths(folder: Path, manifest: Manifest) -> list[Path]:
    """The manifest's segment files in log order (partition, then offset)."""
    return [folder / s.file for s in sorted(manifest.segments, key=lambda s: (s.partition, s.start))]


def read_table(folder: Path | str, columns: tuple[str, ...] = COLUMNS) -> tuple[pa.Table, Manifest]:
    """The snapshot's rows in log order (no lock: callers that may race a builder use `load_matrix`)."""
    folder = Path(folder)
    manifest = Manifest.read(folder)
    if manifest is None:
        raise SnapshotMissing(f"no snapshot in {folder}; build it with `movieaugur snapshot`")
    tables = [pq.read_table(path, columns=list(columns)) for path in segment_paths(folder, manifest)]
    if not tables:
        return SCHEMA.empty_table().select(list(columns)), manifest
    return pa.concat_tables(tables), manifest


async def read_redactions(log: EventLog) -> Redactions:
    """Every redaction in the log (a small stream, read whole on every load)."""
    redactions = Redactions()
    async for logged in log.scan(REDACTIONS):
        if isinstance(logged.event, EventsRedacted):
            redactions.add(logged.event)
    return redactions


def _codes(column: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """Dictionary codes over one shared dictionary, and that dictionary."""
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    if column.num_chunks == 0:
        return np.zeros(0, np.int32), pa.array([], pa.string())
    if column.num_chunks > 1:
        column = pa.chunked_array(pa.table({"c": column}).unify_dictionaries().column("c").chunks)
    dictionary = column.chunk(0).dictionary
    codes = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in column.chunks])
    return codes.astype(np.int64, copy=False), dictionary


def _first_rows(codes: np.ndarray, size: int) -> np.ndarray:
    """Per code in [0, size), the first row holding it (len(codes) where none does). O(n)."""
    first = np.full(size, codes.size, dtype=np.int64)
    np.minimum.at(first, codes, np.arange(codes.size, dtype=np.int64))
    return first


def _first_seen(codes: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense ids numbered in order of first appearance (what load_interactions' dict.setdefault
    gives), and the original codes in that order."""
    first = _first_rows(codes, size)
    present = np.flatnonzero(first < codes.size)
    order = present[np.argsort(first[present], kind="stable")]
    rank = np.full(size, -1, dtype=np.int64)
    rank[order] = np.arange(order.size)
    return rank[codes], order


_HASH_CHUNK = 1 << 20
_HASH_MULTIPLIER = np.uint64(0x100000001B3)  # FNV's 64-bit prime, as a polynomial base


def _string_hashes(strings: pa.Array) -> np.ndarray:
    """A 64-bit polynomial hash of each string, vectorised over Arrow's offsets and bytes."""
    out = np.zeros(len(strings), dtype=np.uint64)
    for begin in range(0, len(strings), _HASH_CHUNK):
        part = strings.slice(begin, _HASH_CHUNK)
        if part.type != pa.string():
            part = part.cast(pa.string())
        offsets = np.frombuffer(part.buffers()[1], dtype=np.int32, count=len(part) + 1, offset=part.offset * 4)
        data = np.frombuffer(part.buffers()[2], dtype=np.uint8) if part.buffers()[2] is not None else np.zeros(0, np.uint8)
        first, last = int(offsets[0]), int(offsets[-1])
        lengths = np.diff(offsets)
        owner = np.repeat(np.arange(len(part)), lengths)
        position = np.arange(last - first, dtype=np.int64) - (offsets[:-1] - first)[owner]
        powers = np.cumprod(np.full(max(1, int(lengths.max(initial=0))), _HASH_MULTIPLIER, dtype=np.uint64))
        terms = (data[first:last].astype(np.uint64) + np.uint64(1)) * powers[position]  # wraps mod 2**64
        hashes = np.zeros(len(part), dtype=np.uint64)
        filled = lengths > 0
        hashes[filled] = np.add.reduceat(terms, (offsets[:-1] - first)[filled]) if terms.size else 0
        out[begin : begin + len(part)] = hashes + lengths.astype(np.uint64)
    return out


def _first_occurrences(column: pa.ChunkedArray) -> np.ndarray:
    """True for the first row of each event_id (rows are in log order).

    Exact, in O(n) memory of 8-byte hashes rather than a hash table of all ids: rows whose hash no
    other row shares are first occurrences; only the rows of hash groups (real duplicates, and
    the rare collision) are compared by their ids, in log order.
    """
    hashes = np.concatenate([_string_hashes(chunk) for chunk in column.chunks]) if column.num_chunks else np.zeros(0, np.uint64)
    keep = np.ones(hashes.size, dtype=bool)
    if hashes.size < 2:
        return keep
    ordered = np.sort(hashes)
    same = ordered[1:] == ordered[:-1]
    if not same.any():
        return keep  # every id distinct: the usual case
    shared = np.unique(ordered[1:][same])  # hash values that more than one row has
    slot = np.minimum(np.searchsorted(shared, hashes), shared.size - 1)
    rows = np.flatnonzero(shared[slot] == hashes)
    seen: set[str] = set()
    for row, event_id in zip(rows.tolist(), column.take(pa.array(rows)).to_pylist(), strict=True):
        if event_id in seen:
            keep[row] = False
        else:
            seen.add(event_id)
    return keep


def _mask_of(dictionary: pa.Array, codes: np.ndarray, value: str) -> np.ndarray:
    hits = np.flatnonzero(np.asarray(pc.equal(dictionary, value).to_numpy(zero_copy_only=False), dtype=bool))
    return np.isin(codes, hits) if hits.size else np.zeros(codes.size, dtype=bool)


def weights_of_rows(table: pa.Table, weights: ActionWeights) -> np.ndarray:
    """The signed weight of each row (NaN for an action no longer configured).

    ActionWeights.weight itself is called once per action, and for ratings once per distinct value
    (a handful of star values): every row gets the very float the log scan computes.
    """
    codes, actions = _codes(table.column("action"))
    out = np.full(codes.size, np.nan)
    value_column = table.column("value")
    for code, action in enumerate(actions.to_pylist()):
        if action not in weights:
            continue  # an action no longer configured counts for nothing
        rows = np.flatnonzero(codes == code)
        if action != "rating":
            out[rows] = weights.weight(action)
            continue
        values = pc.dictionary_encode(pc.fill_null(value_column.take(pa.array(rows)), float("nan")))
        value_codes, distinct = _codes(values)
        per_value = np.array([
            weights.weight(action, None if v is None or v != v else v) for v in distinct.to_pylist()
        ], dtype=np.float64)
        out[rows] = per_value[value_codes]
    return out


def redacted_rows(table: pa.Table, redactions: Redactions) -> np.ndarray:
    """True for the rows a redaction covers (the rule of domain/redactions.py, on columns)."""
    covered = np.zeros(table.num_rows, dtype=bool)
    if not redactions:
        return covered
    if redactions.event_ids:
        ids = pa.array(sorted(redactions.event_ids), pa.string())
        covered |= pc.is_in(table.column("event_id"), value_set=ids).to_numpy(zero_copy_only=False)
    if redactions.ranges:
        user_codes, users = _codes(table.column("user_id"))
        source_codes, sources = _codes(table.column("source"))
        at = table.column("occurred_at").to_numpy()
        for rule in redactions.ranges:
            hit = np.ones(table.num_rows, dtype=bool)
            if rule.user_id is not None:
                hit &= _mask_of(users, user_codes, rule.user_id)
            if rule.source is not None:
                hit &= _mask_of(sources, source_codes, rule.source)
            if rule.from_time is not None:
                hit &= at >= rule.from_time
            if rule.until_time is not None:
                hit &= at < rule.until_time
            covered |= hit
    return covered


def matrix_from_table(
    table: pa.Table, weights: ActionWeights, redactions: Redactions, half_life_days: float | None = None
) -> InteractionMatrix:
    """The weighted user × item matrix from snapshot rows in log order, by load_interactions' rules:
    the first event of an event_id counts, redacted ones and those weighing nothing do not."""
    first = _first_occurrences(table.column("event_id"))
    duplicates = int(first.size - first.sum())
    weight = weights_of_rows(table, weights)
    keep = first & ~redacted_rows(table, redactions) & np.isfinite(weight) & (weight != 0.0)
    user_codes, users = _codes(table.column("user_id"))
    item_codes, items = _codes(table.column("item_key"))
    rows, user_order = _first_seen(user_codes[keep], len(users))
    cols, item_order = _first_seen(item_codes[keep], len(items))
    stamps = table.column("occurred_at").to_numpy()[keep]
    matrix, latest = pair_matrix(rows, cols, weight[keep], stamps, (user_order.size, item_order.size), half_life_days)
    return InteractionMatrix(
        matrix=matrix,
        users=users.take(pa.array(user_order)).to_pylist(),
        items=items.take(pa.array(item_order)).to_pylist(),
        events=int(keep.sum()),
        duplicates=duplicates,
        latest=latest,
    )


@dataclass
class SnapshotMatrix:
    data: InteractionMatrix
    positions: dict[str, int]  # the log range the matrix covers: "interactions/<p>" → end offset
    rows: int  # snapshot rows read
    seconds: dict[str, float]


async def load_matrix(
    folder: Path | str, log: EventLog, weights: ActionWeights, half_life_days: float | None = None
) -> SnapshotMatrix:
    """The matrix from the snapshot as it stands (redactions read from the log)."""
    folder = Path(folder)
    clock: dict[str, float] = {}
    mark = time.perf_counter()
    redactions = await read_redactions(log)
    async with _locked(folder, exclusive=False):
        table, manifest = await asyncio.to_thread(read_table, folder, MATRIX_COLUMNS)
    clock["read"] = time.perf_counter() - mark
    mark = time.perf_counter()
    data = await asyncio.to_thread(matrix_from_table, table, weights, redactions, half_life_days)
    clock["matrix"] = time.perf_counter() - mark
    return SnapshotMatrix(data, manifest.sources(), table.num_rows, clock)


def snapshot_exists(folder: Path | str) -> bool:
    return (Path(folder) / MANIFEST).is_file()


def describe(folder: Path | str) -> dict[str, Any]:
    """What `movieaugur snapshot --status` prints."""
    manifest = Manifest.read(Path(folder))
    if manifest is None:
        return {"folder": str(folder), "exists": False}
    size = sum((Path(folder) / s.file).stat().st_size for s in manifest.segments)
    return {"folder": str(folder), "exists": True, "events": manifest.events, "segments": len(manifest.segments),
            "bytes": size, "positions": manifest.sources()}

