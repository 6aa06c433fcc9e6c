"""The operations behind the CLI and the Airflow DAGs, each a plain async function over a container.

Keeping them here (not in the CLI) lets dags/ stay thin wrappers and tests call exactly what users run.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from domain.configuration import weights_of
from domain.events import INTERACTIONS, EventsRedacted, content_event_id
from domain.ports import AppendResult
from domain.redactions import Redactions
from kernel.settings import Settings
from movieaugur.adapters.connect_sinks import register_sinks, reset_sink
from movieaugur.adapters.kafka_log import KafkaEventLog
from movieaugur.bootstrap import Container
from offline.ingest.collectors import collect_metadata_into, collect_popularity_into
from offline.ingest.movielens import import_movielens
from offline.ingest.sample import generate_sample
from offline.training.pipeline import TrainReport, train_and_publish
from offline.training.snapshot import describe as describe_snapshot
from offline.training.snapshot import update_snapshot
from projections.registry import build_projections
from projections.runner import ReplayReport


async def log_is_empty(container: Container) -> bool:
    ends = await container.log.end_offsets(INTERACTIONS)
    return not any(ends.values())


async def catch_up(container: Container, progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Run every projection until it has applied everything in the log."""
    counts = {}
    for projector in container.projectors():
        advance = (lambda n, name=projector.name: progress(name, n)) if progress else None
        counts[projector.name] = await projector.catch_up(advance)
    return counts


async def load_sample(container: Container, users: int = 600, seed: int = 7) -> dict[str, int]:
    sample = generate_sample(users=users, seed=seed)
    catalog = await container.log.append(sample.catalog)
    appended = 0
    for start in range(0, len(sample.interactions), 10_000):
        result = await container.log.append(sample.interactions[start : start + 10_000])
        appended += result.appended
    return {"catalog": catalog.appended, "interactions": appended, "users": len(sample.users)}


def import_batch(settings: Settings) -> int:
    """Events per append of an import. Embedded, each append is a SQLite commit with an fsync
    (50,000 per commit: 12 % faster than 10,000 for a 1M-row import); distributed, a Kafka
    transaction that must finish within MOVIEAUGUR_KAFKA_WRITE_TIMEOUT_SECONDS."""
    return 50_000 if settings.mode == "embedded" else 10_000


async def load_movielens(container: Container, folder: Path, progress: Callable[[str, int], None] | None = None) -> dict[str, Any]:
    results = await import_movielens(container.log, folder, progress=progress, batch_size=import_batch(container.settings))
    return _import_counts(results)


def load_movielens_parallel(
    settings: Settings, folder: Path, workers: int, progress: Callable[[str, int], None] | None = None
) -> dict[str, Any]:
    """load_movielens with `workers` importer processes (movieaugur/parallel_import.py)."""
    from movieaugur.parallel_import import import_movielens_parallel

    return _import_counts(import_movielens_parallel(settings, folder, workers, progress, batch_size=import_batch(settings)))


def _import_counts(results: Mapping[str, AppendResult]) -> dict[str, Any]:
    return {part: {"appended": r.appended, "duplicates": r.duplicates} for part, r in results.items()}


async def train(
    container: Container,
    model: str | None = None,
    time_budget: float | None = None,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
    engine: str | None = None,
    source: str | None = None,
) -> TrainReport:
    settings = container.settings
    engine = engine or settings.train_engine
    return await train_and_publish(
        container.log,
        weights_of(settings),
        model_name=model or settings.default_model,
        time_budget=settings.train_time_budget_seconds if time_budget is None else time_budget,
        recommendations_per_user=settings.recommendations_per_user,
        models_dir=settings.models_dir,
        force=force,
        progress=progress,
        source=source or settings.train_source,
        snapshot_dir=snapshot_folder(settings),
        engine=engine,
        memory_budget_bytes=int(settings.train_memory_gb * 2**30),
        spark=spark_options(settings) if engine == "spark" else None,
    )


def snapshot_folder(settings: Settings) -> Path:
    """Where the columnar interaction snapshot lives (MOVIEAUGUR_SNAPSHOT_DIR)."""
    return settings.snapshot_dir or settings.data_dir / "snapshot" / "interactions"


def spark_options(settings: Settings) -> dict[str, Any]:
    """`train --engine spark`: the master, driver memory and a work folder the workers share."""
    work = settings.spark_work_dir or snapshot_folder(settings).parent / "spark-work"
    return {"master": settings.spark_master, "driver_memory": settings.spark_driver_memory, "work_dir": work}


async def snapshot(
    container: Container, rebuild: bool = False, progress: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Bring the columnar interaction snapshot up to the log's end (build it on first use);
    `rebuild` deletes it first. Safe to interrupt and repeat: the manifest commits each segment."""
    folder = snapshot_folder(container.settings)
    if rebuild:
        shutil.rmtree(folder, ignore_errors=True)
    report = await update_snapshot(folder, container.log, progress=progress)
    done = asdict(report)
    done["segments_written"], done["orphans_removed"] = done.pop("segments"), done.pop("orphans")
    return {"folder": str(folder), **done, **describe_snapshot(folder)}


def replayable(container: Container) -> list[str]:
    """Projections that `replay` can rebuild: those projectors run, and in distributed mode also
    those whose views Kafka Connect keeps (rebuilt by resetting the sink)."""
    return list(build_projections(weights_of(container.settings)))


async def replay(
    container: Container, names: list[str], progress: Callable[[str, int], None] | None = None
) -> list[ReplayReport]:
    reports = []
    for name in names:
        if name not in container.projections:
            reports.append(await _reset_connect_view(container, name))
            continue
        projector = container.projector(name)
        advance = (lambda n, name=name: progress(name, n)) if progress else None
        reports.append(await projector.replay(advance))
    return reports


async def _reset_connect_view(container: Container, name: str) -> ReplayReport:
    """A view its declaration gives to a Connect sink: reset the sink, which copies again."""
    started = time.perf_counter()
    projection = build_projections(weights_of(container.settings))[name]
    if projection.sink is None:
        raise ValueError(f"{name} is kept by a projector, yet no projector runs it here")
    connector = projection.sink.connector_name(container.settings.topic_prefix)

    async def empty_view() -> None:
        await container.store.drop(name, projection.spaces)

    await reset_sink(container.settings.connect_url, connector, empty_view)
    records = 0
    for stream in projection.streams:
        records += sum((await container.log.end_offsets(stream)).values())
    return ReplayReport(name, records, time.perf_counter() - started)


async def redact(
    container: Container,
    event_ids: Sequence[str] = (),
    user_id: str | None = None,
    source: str | None = None,
    from_time: int | None = None,
    until_time: int | None = None,
    reason: str = "",
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, Any]:
    """Neutralize interactions already in the log: append the redaction (the log is never
    rewritten), then replay every view that reads interactions so each one equals the view of a
    log without them. The next training run leaves them out too. Repeating it appends nothing."""
    if not event_ids and user_id is None and source is None:
        raise ValueError("say what to redact: event ids, a user, or a source (with an optional time range)")
    rule: dict[str, Any] = {
        "event_ids": sorted(set(event_ids)),
        "user_id": user_id,
        "source": source,
        "from_time": from_time,
        "until_time": until_time,
    }
    redaction = EventsRedacted.new(event_id=content_event_id("redaction", rule), reason=reason, **rule)
    appended = await container.log.append([redaction])
    rules = Redactions.of([redaction])
    covered = 0
    async for logged in container.log.scan(INTERACTIONS):
        covered += rules.covers(logged.event)
    touched = [name for name, projection in container.projections.items() if INTERACTIONS in projection.streams]
    reports = await replay(container, touched, progress)
    return {
        "redaction": redaction.event_id,
        "appended": appended.appended,
        "covered_events": covered,
        "replayed": {r.projection: r.events for r in reports},
    }


async def prepare_distributed(settings: Settings) -> list[str]:
    """Create MovieAugur's topics (with their retention and compaction) and register the Connect
    sinks its projections declare; safe to repeat. Returns the connector names."""
    log = KafkaEventLog(settings)
    try:
        await log.ensure_topics()
    finally:
        await log.close()
    projections = build_projections(weights_of(settings)).values()
    return await register_sinks(
        settings.connect_url, projections, settings.topic_prefix, settings.mongo_url, settings.mongo_database
    )


def wipe_embedded_state(data_dir: Path) -> None:
    """Delete the embedded log, views and models (the demo's --fresh)."""
    for name in ("events.sqlite", "views.sqlite"):
        for suffix in ("", "-wal", "-shm"):
            (data_dir / f"{name}{suffix}").unlink(missing_ok=True)
    shutil.rmtree(data_dir / "models", ignore_errors=True)
    shutil.rmtree(data_dir / "snapshot", ignore_errors=True)  # derived from the log just deleted


def elapsed(since: float) -> str:
    return f"{time.perf_counter() - since:.1f}s"


async def collect(container: Container, what: str, progress: Callable[[Any], None] | None = None) -> dict[str, Any]:
    """`metadata` or `popularity` from TMDB into the log."""
    if what == "popularity":
        result, observed = await collect_popularity_into(container.log, container.settings, progress=progress)
        return {"appended": result.appended, "duplicates": result.duplicates,
                "lists": {o["item_type"]: len(o["items"]) for o in observed}}
    if what == "metadata":
        result = await collect_metadata_into(container.log, container.settings, progress=progress)
        return {"appended": result.appended, "duplicates": result.duplicates}
    raise ValueError(f"nothing to collect called {what!r}; choose metadata or popularity")
