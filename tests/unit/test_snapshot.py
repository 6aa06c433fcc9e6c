"""The columnar interaction snapshot (offline/training/snapshot.py): exactly once under interruption,
replayable, and the very matrix the log scan builds; training from it publishes the same model."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.events import REDACTIONS, EventsRedacted, InteractionRecorded, from_unix
from domain.ports import EventLog
from domain.weights import ActionWeights
from kernel.settings import DEFAULT_ACTION_WEIGHTS, Settings
from movieaugur import operations
from movieaugur.adapters.memory_log import MemoryEventLog
from movieaugur.adapters.sqlite_log import SQLiteEventLog
from movieaugur.bootstrap import bootstrap
from offline.ingest.sample import generate_sample
from offline.training import snapshot
from offline.training.interaction_matrix import InteractionMatrix, load_interactions
from offline.training.models import load_model
from offline.training.snapshot import (
    MANIFEST,
    SnapshotBuilder,
    SnapshotMismatch,
    load_matrix,
    read_table,
)

WEIGHTS = ActionWeights(DEFAULT_ACTION_WEIGHTS)
USERS = [f"u{i}" for i in range(7)]
ITEMS = [("movie", f"m{i}") for i in range(6)] + [("series", f"s{i}") for i in range(3)]
ACTIONS = ["view", "like", "dislike", "rating", "click", "watchlist", "shared"]  # "shared": no weight
VALUES = [0.5, 1.0, 2.5, 3.0, 4.0, 5.0, 7.5, None]  # 7.5 and None: a rating that counts nothing


def interaction(n: int) -> InteractionRecorded:
    """Event n always has the same content: drawing n twice is a retry (a duplicate in the log)."""
    action = ACTIONS[n % len(ACTIONS)]
    return InteractionRecorded.new(
        event_id=f"e{n}",
        timestamp=from_unix(1_700_000_000 + (n % 9) * 86_400 + n),
        user_id=USERS[(n * 5) % len(USERS)],
        item_type=ITEMS[(n * 3) % len(ITEMS)][0],
        item_id=ITEMS[(n * 3) % len(ITEMS)][1],
        action=action,
        value=VALUES[n % len(VALUES)] if action == "rating" else None,
        source=["api", "movielens", "legacy-api"][n % 3],
    )


class Crash(Exception):
    """The builder killed at one of its steps."""


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _rows(table: pa.Table) -> dict[str, list]:
    return {name: table.column(name).to_pylist() for name in table.column_names}


def _same_matrix(a: InteractionMatrix, b: InteractionMatrix) -> None:
    assert (a.users, a.items, a.events, a.duplicates, a.latest) == (b.users, b.items, b.events, b.duplicates, b.latest)
    assert a.matrix.shape == b.matrix.shape and a.matrix.dtype == b.matrix.dtype == np.float32
    assert np.array_equal(a.matrix.indptr, b.matrix.indptr)
    assert np.array_equal(a.matrix.indices, b.matrix.indices)
    assert np.array_equal(a.matrix.data, b.matrix.data)  # bit for bit, not approximately


async def _build_interrupted(folder: Path, log: EventLog, crashes: list[int], read_batch: int, segment_rows: int) -> int:
    """Update until it succeeds, killing the builder at the given checkpoint counts first."""
    attempts = 0
    for crash_at in [*crashes, None]:
        calls = 0

        def checkpoint(stage: str, crash_at: int | None = crash_at) -> None:
            nonlocal calls
            calls += 1
            if crash_at is not None and calls == crash_at:
                raise Crash(stage)

        builder = SnapshotBuilder(folder, log, read_batch=read_batch, segment_rows=segment_rows, checkpoint=checkpoint)
        attempts += 1
        try:
            await builder.update()
            return attempts
        except Crash:
            continue
    raise AssertionError("unreachable: the last attempt never crashes")


async def _scenario(rounds: list[list[int]], crashes: list[list[int]], read_batch: int, segment_rows: int,
                    redact: list[int], folder: Path) -> None:
    log = MemoryEventLog(partitions=3)
    incremental = folder / "incremental"
    for batch, crash_points in zip(rounds, crashes, strict=True):
        await log.append([interaction(n) for n in batch])
        await _build_interrupted(incremental, log, crash_points, read_batch, segment_rows)
    # A later redaction changes what earlier segments count for: applied at load time.
    if redact:
        await log.append([EventsRedacted.new(event_ids=[f"e{n}" for n in redact])])
    await log.append([EventsRedacted.new(event_ids=[], user_id=USERS[0], from_time=1_700_000_000 + 3 * 86_400)])
    scratch = folder / "scratch"
    await SnapshotBuilder(scratch, log).update()
    got, got_manifest = read_table(incremental)
    want, want_manifest = read_table(scratch)
    assert _rows(got) == _rows(want)
    assert got_manifest.positions == want_manifest.positions == await log.end_offsets("interactions")
    assert not [p.name for p in incremental.iterdir() if p.name.startswith(".") and p.name != ".lock"]
    segments = {s.file for s in got_manifest.segments}
    assert {p.name for p in incremental.glob("*.parquet")} == segments  # no orphan left behind
    for half_life in (None, 3.0):
        from_log = await load_interactions(log, WEIGHTS, half_life)
        _same_matrix((await load_matrix(incremental, log, WEIGHTS, half_life)).data, from_log)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rounds=st.lists(st.lists(st.integers(0, 60), max_size=25), min_size=1, max_size=4),
    crash_points=st.lists(st.lists(st.integers(1, 30), max_size=3), min_size=4, max_size=4),
    read_batch=st.integers(1, 9),
    segment_rows=st.integers(1, 12),
    redact=st.lists(st.integers(0, 60), max_size=4),
)
def test_interrupted_incremental_snapshot_equals_a_build_from_scratch(  # type: ignore[no-untyped-def]
    rounds, crash_points, read_batch, segment_rows, redact
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(_scenario(rounds, crash_points[: len(rounds)], read_batch, segment_rows, redact, Path(folder)))


async def test_a_kill_between_segment_and_manifest_reads_the_range_again(tmp_path: Path) -> None:
    log = MemoryEventLog(partitions=1)
    await log.append([interaction(n) for n in range(10)])
    stages: list[str] = []

    def kill_after_segment(stage: str) -> None:
        stages.append(stage)
        if stage == "segment":
            raise Crash(stage)

    with pytest.raises(Crash):
        await SnapshotBuilder(tmp_path, log, checkpoint=kill_after_segment).update()
    assert _files(tmp_path) == [".lock", "p0000-00000000000000000000-00000000000000000010.parquet"]  # no manifest:
    # the segment is not part of the snapshot yet
    report = await SnapshotBuilder(tmp_path, log).update()
    assert (report.orphans, report.appended, report.events) == (1, 10, 10)
    table, manifest = read_table(tmp_path)
    assert table.column("offset").to_pylist() == list(range(10)) and manifest.positions == {0: 10}
    again = await SnapshotBuilder(tmp_path, log).update()
    assert (again.appended, again.segments, again.events) == (0, 0, 10)


async def test_sqlite_log_offsets_and_a_foreign_log_are_refused(tmp_path: Path) -> None:
    log = SQLiteEventLog(tmp_path / "a.sqlite")
    other = SQLiteEventLog(tmp_path / "b.sqlite")
    try:
        await log.append([interaction(n) for n in range(30)])
        await other.append([interaction(n) for n in range(100, 140)])
        folder = tmp_path / "snap"
        report = await SnapshotBuilder(folder, log, read_batch=7, segment_rows=10).update()
        assert report.positions == {"interactions/0": 31} and report.events == 30  # notification ids start at 1
        table, _ = read_table(folder)
        assert table.column("offset").to_pylist() == list(range(1, 31))
        assert json.loads((folder / MANIFEST).read_text())["positions"] == {"0": 31}
        with pytest.raises(SnapshotMismatch, match="another log"):
            await SnapshotBuilder(folder, other).update()
        shorter = SQLiteEventLog(tmp_path / "c.sqlite")
        await shorter.append([interaction(n) for n in range(5)])
        with pytest.raises(SnapshotMismatch, match="ahead|another log"):
            await SnapshotBuilder(folder, shorter).update()
        await shorter.close()
    finally:
        await log.close()
        await other.close()


async def test_matrix_from_snapshot_equals_log_scan_with_duplicates_and_redactions(tmp_path: Path) -> None:
    log = SQLiteEventLog(tmp_path / "events.sqlite")
    try:
        sample = generate_sample(users=120, movies=80, series=30, seed=5)
        await log.append(sample.interactions)
        # SQLite skips a retried id; the Kafka-like memory log below keeps it: both dedupe alike.
        await log.append(sample.interactions[:50])
        first = sample.interactions[0]
        redactions = [
            EventsRedacted.new(event_ids=[e.event_id for e in sample.interactions[100:140]]),
            EventsRedacted.new(event_ids=[], user_id=first.user_id),
            EventsRedacted.new(event_ids=[], source="api", from_time=first.occurred_at, until_time=first.occurred_at + 86_400),
        ]
        await log.append(redactions)
        folder = tmp_path / "snap"
        await SnapshotBuilder(folder, log, segment_rows=3000).update()
        for half_life in (None, 7.0):
            loaded = await load_matrix(folder, log, WEIGHTS, half_life)
            _same_matrix(loaded.data, await load_interactions(log, WEIGHTS, half_life))
        memory = MemoryEventLog(partitions=3)
        await memory.append(sample.interactions)
        await memory.append(sample.interactions[:50])  # appended again: real duplicates
        await memory.append(redactions)
        assert [e async for e in memory.scan(REDACTIONS)]
        await SnapshotBuilder(tmp_path / "mem", memory).update()
        loaded = await load_matrix(tmp_path / "mem", memory, WEIGHTS)
        assert loaded.data.duplicates == 50 and loaded.rows == len(sample.interactions) + 50
        _same_matrix(loaded.data, await load_interactions(memory, WEIGHTS))
    finally:
        await log.close()


async def test_training_from_the_snapshot_publishes_the_same_model(tmp_path: Path) -> None:
    sample = generate_sample(users=200, movies=150, series=60, seed=3)
    published = {}
    for source in ("log", "snapshot"):
        settings = Settings(mode="embedded", data_dir=tmp_path / source)
        container = await bootstrap(settings)
        try:
            await container.log.append(sample.catalog)
            await container.log.append(sample.interactions[: len(sample.interactions) // 2])
            if source == "snapshot":  # built on half the log: training must bring it up to the end
                await operations.snapshot(container)
            await container.log.append(sample.interactions[len(sample.interactions) // 2 :])
            report = await operations.train(container, time_budget=0, source=source)
            assert report.published, report.reason
            assert report.source == source
            ends = await container.log.end_offsets("interactions")
            assert report.log_positions == {"interactions/0": ends[0]}
            recs = {}
            async for logged in container.log.scan("recommendations"):
                event = logged.event
                if type(event).__name__ == "RecommendationsPublished":
                    recs[event.user_id] = event.items
                elif type(event).__name__ == "ModelPublished":
                    assert event.params["data"] == {"source": source, "log_positions": report.log_positions,
                                                    "events": report.events}
            model = load_model(settings.models_dir / "default" / report.version)
            published[source] = (report.algorithm, report.params, report.metrics, report.events, recs, model)
        finally:
            await container.close()
    a, b = published["log"], published["snapshot"]
    assert a[:4] == b[:4] and a[4] == b[4]
    assert np.array_equal(a[5].user_factors, b[5].user_factors)
    assert np.array_equal(a[5].item_factors, b[5].item_factors)


async def test_auto_source_uses_the_snapshot_once_it_exists(container, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sample = generate_sample(users=80, movies=60, series=20, seed=9)
    await container.log.append(sample.interactions)
    report = await operations.train(container, time_budget=0, force=True)
    assert report.source == "log"
    built = await operations.snapshot(container)
    assert built["appended"] == len(sample.interactions) and built["segments"] == 1
    report = await operations.train(container, time_budget=0, force=True)
    assert report.source == "snapshot"
    rebuilt = await operations.snapshot(container, rebuild=True)
    assert rebuilt["appended"] == len(sample.interactions)


def test_event_id_dedupe_is_exact_even_when_hashes_collide(monkeypatch: pytest.MonkeyPatch) -> None:
    ids = pa.chunked_array([pa.array(["a", "b", "a", "c"]), pa.array(["b", "", "a", ""]), pa.array([], pa.string())])
    want = [True, True, False, True, False, True, False, False]
    assert snapshot._first_occurrences(ids).tolist() == want
    monkeypatch.setattr(snapshot, "_string_hashes", lambda chunk: np.zeros(len(chunk), np.uint64))
    assert snapshot._first_occurrences(ids).tolist() == want  # every row collides: all compared by id
    distinct = pa.chunked_array([pa.array([f"id{n}" for n in range(5000)])])
    monkeypatch.undo()
    assert snapshot._first_occurrences(distinct).all()
    assert len(set(snapshot._string_hashes(distinct.chunk(0)).tolist())) == 5000
