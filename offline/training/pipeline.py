"""Training: the whole log → a model version → recommendations published back into the log.

1. Build the weighted user × item matrix from every interaction in the log.
2. Hold out 20 % of each eligible user's positives (contract §5's split, on log data).
3. Choose and fit a model on the rest (offline.training.selection), score it and popularity on the held-out part.
4. The quality gate: publish only if the model beats popularity there; otherwise the previous
   model keeps answering and the report says why.
5. Refit on everything, rank for every user, and append RecommendationsPublished,
   SimilarItemsPublished and ModelPublished events, so the read side gets them through the same
   projection path as everything else (Kafka Connect copies them in distributed mode).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from domain.events import INTERACTIONS, ModelPublished, RecommendationsPublished, SimilarItemsPublished
from domain.ports import EventLog
from domain.weights import ActionWeights
from offline.training.fold_in import save_serving_artifacts
from offline.training.holdout import RANK_DEPTH, split_matrix
from offline.training.interaction_matrix import InteractionMatrix, load_interactions
from offline.training.metrics import evaluate_rankings
from offline.training.models import Popularity, Recommender, build_model
from offline.training.selection import Choice, choose_model
from offline.training.similar_items import similar_items
from offline.training.snapshot import load_matrix, snapshot_exists, update_snapshot
from offline.training.tuning import CANDIDATES

PUBLISH_BATCH = 2000
#: The quality gate ranks at most this many held-out users (a seeded sample above it). Why: ranking
#: is users × items work, 125,000 × 25,000 at 20M interactions; the mean NDCG@100 of 20,000 users
#: has a standard error near 0.002, far below the gaps the gate decides on.
GATE_USERS = 20_000

#: What one training run may use (MOVIEAUGUR_TRAIN_MEMORY_GB): EASE and the tuner are sized to it.
DEFAULT_MEMORY_BUDGET = 8 * 2**30
#: Measured peak of an EASE fit on n items: about 4.2 float64 n × n arrays (Gram matrix, its
#: factorisation, the symmetrised inverse, B) = 34 · n² bytes. 20,000 items would need 13 GiB.
EASE_BYTES_PER_ITEM_PAIR = 34
#: The tuner scores every validation user against every item at once and keeps the best scores of
#: each family (EASE, ALS) for the blend: about six float32 users × items arrays.
TUNING_BYTES_PER_CELL = 24
#: Hyper-parameters of the Spark engine (no tuner runs on Spark): the fixed tuned ALS of
#: docs/model-quality.md, in implicit's terms (offline/training/spark_als.py translates them).
SPARK_ALS = {"factors": 128, "regularization": 30.0, "alpha": 5.0, "iterations": 15}
ENGINES = ("implicit", "spark")
SOURCES = ("log", "snapshot", "auto")


@dataclass
class TrainReport:
    model: str
    version: str
    published: bool
    reason: str
    algorithm: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    baseline: dict[str, float] = field(default_factory=dict)
    users: int = 0
    items: int = 0
    events: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    # Where the interactions came from ("log" or "snapshot"), the log range they cover
    # ("interactions/<partition>" → end offset: every event before it, none after) and the engine.
    source: str = "log"
    log_positions: dict[str, int] = field(default_factory=dict)
    engine: str = "implicit"
    # How many held-out users the gate ranked (GATE_USERS caps it).
    gate_users: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def gate_users(test: Any, seed: int, cap: int = GATE_USERS) -> np.ndarray:
    """The held-out users the gate ranks: all of them, or a seeded sample of `cap` above that."""
    rows = np.flatnonzero(np.diff(test.indptr) > 0)
    if rows.shape[0] > cap:
        rows = np.sort(np.random.default_rng(seed).choice(rows, cap, replace=False))
    return rows


def _holdout_metrics(model: Recommender, train, test, rows: np.ndarray) -> dict[str, float]:
    recs, _ = model.recommend(rows, train, RANK_DEPTH, exclude_seen=True)
    return evaluate_rankings(recs, test, rows)


def new_version() -> str:
    return datetime.now(UTC).strftime("v%Y%m%d%H%M%S%f")[:-3]


async def train_and_publish(
    log: EventLog,
    weights: ActionWeights,
    model_name: str = "default",
    time_budget: float = 60.0,
    recommendations_per_user: int = 100,
    models_dir: Path | None = None,
    half_life_days: float | None = None,
    force: bool = False,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    source: str = "log",
    snapshot_dir: Path | None = None,
    engine: str = "implicit",
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET,
    spark: dict[str, Any] | None = None,
) -> TrainReport:
    say = progress or (lambda _: None)
    clock: dict[str, float] = {}
    started = time.perf_counter()
    data, used, positions = await _load(log, weights, half_life_days, source, snapshot_dir, say)
    clock["load"] = time.perf_counter() - started
    version = new_version()
    report = TrainReport(model_name, version, False, "", users=len(data.users), items=len(data.items), events=data.events,
                         source=used, log_positions=positions, engine=engine)
    with contextlib.ExitStack() as engine_scope:  # closed after the last fit (a Spark JVM is not kept for publishing)
        make = engine_scope.enter_context(_engine(engine, spark))
        return await _train(log, data, report, make, engine_scope.close, model_name, version, time_budget,
                            recommendations_per_user, models_dir, force, seed, memory_budget_bytes, clock, started, say)


async def _train(
    log: EventLog,
    data: InteractionMatrix,
    report: TrainReport,
    make: ModelMaker,
    release: Callable[[], None],
    model_name: str,
    version: str,
    time_budget: float,
    recommendations_per_user: int,
    models_dir: Path | None,
    force: bool,
    seed: int,
    memory_budget_bytes: int,
    clock: dict[str, float],
    started: float,
    say: Callable[[str], None],
) -> TrainReport:
    say(f"read {data.events} interactions ({data.duplicates} duplicates skipped): "
        f"{len(data.users)} users × {len(data.items)} items")
    if data.matrix.nnz == 0:
        report.reason = "the log holds no positive interactions yet; nothing to train on"
        return report

    train, test = split_matrix(data.matrix, seed)
    test.data[:] = 1.0
    mark = time.perf_counter()
    choice: Choice = _choose(train, time_budget, seed, say, report.engine, memory_budget_bytes)
    clock["select"] = time.perf_counter() - mark
    report.algorithm, report.params = choice.kind, choice.params
    if test.nnz:
        mark = time.perf_counter()
        candidate = make(choice.kind, choice.params, None).fit(train)
        rows = gate_users(test, seed)
        report.metrics = _holdout_metrics(candidate, train, test, rows)
        report.baseline = _holdout_metrics(Popularity().fit(train), train, test, rows)
        report.gate_users = len(rows)
        clock["evaluate"] = time.perf_counter() - mark
        say(f"held-out NDCG@100: {choice.kind} {report.metrics['ndcg@100']:.4f} "
            f"vs popularity {report.baseline['ndcg@100']:.4f}")
        beats = report.metrics["ndcg@100"] > report.baseline["ndcg@100"]
        if not beats and not force:
            report.reason = (
                f"quality gate: {choice.kind} NDCG@100 {report.metrics['ndcg@100']:.4f} does not beat "
                f"popularity {report.baseline['ndcg@100']:.4f}; the previous model stays"
            )
            report.seconds = clock
            return report
    elif not force:
        report.reason = "too little data to hold anything out (users need 5+ positives); use --force to publish anyway"
        return report

    mark = time.perf_counter()
    model = make(choice.kind, choice.params, model_name).fit(data.matrix)
    release()
    clock["fit"] = time.perf_counter() - mark
    if models_dir is not None:
        # the model, and what query processes need to fold users in with it (offline/training/fold_in.py)
        save_serving_artifacts(model.save(models_dir / model_name / version), data.items, data.matrix)
    mark = time.perf_counter()
    published = await _publish(log, model, data, model_name, version, recommendations_per_user, say)
    clock["publish"] = time.perf_counter() - mark
    await log.append([
        ModelPublished.new(
            model=model_name,
            model_version=version,
            algorithm=choice.kind,
            params={**choice.params, **_provenance(report)},
            metrics={"holdout": report.metrics, "popularity": report.baseline, "selection": choice.validation},
            users=published,
            items_count=len(data.items),
        )
    ])
    report.published = True
    report.reason = "published"
    clock["total"] = time.perf_counter() - started
    report.seconds = clock
    return report


def _ranked_lists(labels: list[tuple[str, str]], idx: np.ndarray, scores: np.ndarray) -> list[list[dict[str, Any]]]:
    """Each row's ranked items as event payloads; -1 (no more candidates) ends a row.

    Why rows at once: publishing builds 12.5 million of these dicts at 20M interactions; plain
    Python lists and labels split once avoid a numpy scalar and a string split per item."""
    return [
        [{"item_type": labels[i][0], "item_id": labels[i][1], "score": round(score, 6)}
         for i, score in zip(row, row_scores, strict=True) if i >= 0]
        for row, row_scores in zip(idx.tolist(), scores.tolist(), strict=True)
    ]


async def _publish(
    log: EventLog,
    model: Recommender,
    data: InteractionMatrix,
    name: str,
    version: str,
    per_user: int,
    say: Callable[[str], None],
) -> int:
    rows = np.arange(len(data.users))
    labels = [(item_type, item_id) for item_type, _, item_id in (key.partition(":") for key in data.items)]
    batch: list = []
    published = 0
    for start in range(0, len(rows), 1024):
        chunk = rows[start : start + 1024]
        idx, scores = model.recommend(chunk, data.matrix, per_user, exclude_seen=True)
        for row, items in zip(chunk.tolist(), _ranked_lists(labels, idx, scores), strict=True):
            if items:
                batch.append(RecommendationsPublished.new(
                    model=name, model_version=version, user_id=data.users[row], items=items
                ))
                published += 1
        if len(batch) >= PUBLISH_BATCH:
            await log.append(batch)
            batch = []
    sim_idx, sim_scores = similar_items(data.matrix)
    for (item_type, item_id), items in zip(labels, _ranked_lists(labels, sim_idx, sim_scores), strict=True):
        if items:
            batch.append(SimilarItemsPublished.new(
                model=name, model_version=version, item_type=item_type, item_id=item_id, items=items
            ))
        if len(batch) >= PUBLISH_BATCH:
            await log.append(batch)
            batch = []
    if batch:
        await log.append(batch)
    say(f"published recommendations for {published} users and similar items for {len(data.items)} items")
    return published


# -- scale: where the matrix comes from, what fits in memory, which engine fits (issue 13) -------

ModelMaker = Callable[[str, dict[str, Any], "str | None"], Recommender]


def ease_item_cap(memory_budget_bytes: int) -> int:
    """The most items EASE (and so the blend) may invert within half the budget."""
    return int(math.sqrt(memory_budget_bytes * 0.5 / EASE_BYTES_PER_ITEM_PAIR))


def tuning_row_cap(memory_budget_bytes: int, n_items: int) -> int:
    """The most users the tuner may see within a quarter of the budget."""
    return max(1000, int(memory_budget_bytes * 0.25 / (TUNING_BYTES_PER_CELL * max(1, n_items))))


async def _load(
    log: EventLog,
    weights: ActionWeights,
    half_life_days: float | None,
    source: str,
    snapshot_dir: Path | None,
    say: Callable[[str], None],
) -> tuple[InteractionMatrix, str, dict[str, int]]:
    """The matrix of every interaction up to the log's end as of now, from the columnar snapshot
    (brought up to that end first, so the whole-log guarantee holds) or by scanning the log."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; choose one of {SOURCES}")
    if source == "auto":
        source = "snapshot" if snapshot_dir is not None and snapshot_exists(snapshot_dir) else "log"
    if source == "snapshot":
        if snapshot_dir is None:
            raise ValueError("source 'snapshot' needs a snapshot folder")
        built = await update_snapshot(snapshot_dir, log)
        loaded = await load_matrix(snapshot_dir, log, weights, half_life_days)
        say(f"snapshot: {built.appended} new interactions appended in {built.seconds:.1f}s; "
            f"{loaded.rows} rows read in {sum(loaded.seconds.values()):.1f}s")
        return loaded.data, "snapshot", loaded.positions
    # The scan reads to the end as of its own start, a moment after this: at least these positions.
    ends = await log.end_offsets(INTERACTIONS)
    data = await load_interactions(log, weights, half_life_days)
    return data, "log", {f"{INTERACTIONS}/{p}": end for p, end in sorted(ends.items())}


def _choose(
    train: Any, time_budget: float, seed: int, say: Callable[[str], None], engine: str, memory_budget_bytes: int
) -> Choice:
    """choose_model, kept within the memory budget: no EASE where its items × items inverse does
    not fit, and the tuner on a seeded sample of users where its dense validation scores would not."""
    if engine == "spark":
        return Choice("als", dict(SPARK_ALS))
    candidates: tuple[str, ...] = CANDIDATES
    active_items = int(np.count_nonzero(np.bincount(train.indices, minlength=train.shape[1])))
    cap = ease_item_cap(memory_budget_bytes)
    if active_items > cap:
        candidates = ("als",)
        say(f"selection: {active_items} items > {cap} that EASE may invert in the memory budget: ALS only")
    rows = tuning_row_cap(memory_budget_bytes, train.shape[1])
    if train.shape[0] > rows and train.nnz:
        sample = np.sort(np.random.default_rng(seed).choice(train.shape[0], rows, replace=False))
        say(f"selection: tuning on {rows} of {train.shape[0]} users (memory budget)")
        train = train[sample]
    return choose_model(train, time_budget=time_budget, seed=seed, progress=say, candidates=candidates)


@contextlib.contextmanager
def _engine(engine: str, options: dict[str, Any] | None) -> Iterator[ModelMaker]:
    """How models are built: in this process (implicit, numpy), or ALS on Spark MLlib."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {ENGINES}")
    if engine == "implicit":
        yield lambda kind, params, name: build_model(kind, params, name=name)
        return
    from offline.training.spark_als import spark_engine

    with spark_engine(**(options or {})) as spark:
        yield spark.model


def _provenance(report: TrainReport) -> dict[str, Any]:
    """What ModelPublished records besides the hyper-parameters: the data and the engine."""
    return {"engine": report.engine, "data": {"source": report.source, "log_positions": report.log_positions,
                                              "events": report.events},
            "gate_users": report.gate_users}
