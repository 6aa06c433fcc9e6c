"""Training: the whole log → a model version → recommendations published back into the log.

1. Build the weighted user × item matrix from every interaction in the log.
2. The gate's users: every user with 5+ positives, or a seeded sample of GATE_USERS of them; hold
   out 20 % of each one's positives (contract §5's split, on log data).
3. Choose and fit a model on the rest (offline.training.selection), score it and popularity on the held-out part.
4. The quality gate: publish only if the model beats popularity there; otherwise the previous
   model keeps answering and the report says why.
5. The model to publish: where the held-out entries are a small share of the data (a sampled gate
   at scale: 3 % at 20M interactions), the gated model itself, its sampled users' factors re-solved
   from their whole history; otherwise (every user held something out) a refit on everything. Why:
   the second fit was a fit's worth of time at scale for a model that differs from the gated one
   only by those few entries, and what is published is then exactly what the gate measured.
6. Rank for every user (unless MOVIEAUGUR_RECOMMENDATIONS_PER_USER is 0: query processes rank each
   user on request by fold-in anyway, offline/serving.py), and append RecommendationsPublished,
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
from offline.training.holdout import MIN_POSITIVES, RANK_DEPTH, split_matrix
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
#: Above this share of the matrix's entries held out by the gate, the published model is refit on
#: everything; at or below it the gated model is published (module doc, step 5).
REFIT_ABOVE_HELD_OUT_SHARE = 0.05

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
    # How many held-out users the gate ranked (GATE_USERS caps it), the share of the matrix's
    # entries it held out, and whether the published model was refit on everything (step 5).
    gate_users: int = 0
    held_out_share: float = 0.0
    refit: bool = True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def gate_users(X: Any, seed: int, cap: int | None = None) -> np.ndarray:
    """The users the gate holds out from and ranks: every row with MIN_POSITIVES+ entries, or a
    seeded sample of `cap` (default GATE_USERS) of them above that."""
    cap = GATE_USERS if cap is None else cap
    rows = np.flatnonzero(np.diff(X.indptr) >= MIN_POSITIVES)
    if rows.shape[0] > cap:
        rows = np.sort(np.random.default_rng(seed).choice(rows, cap, replace=False))
    return rows


@dataclass
class GateSplit:
    """What the candidate is fit on (`train`), the held-out entries it is scored on (`test`, all
    1.0) and the users they belong to (`rows`)."""

    train: Any
    test: Any
    rows: np.ndarray
    held_out_share: float

    @property
    def refit(self) -> bool:
        """Whether the published model must be refit on everything (module doc, step 5)."""
        return self.held_out_share > REFIT_ABOVE_HELD_OUT_SHARE


def gate_split(X: Any, seed: int, cap: int | None = None) -> GateSplit:
    rows = gate_users(X, seed, cap)
    train, test = split_matrix(X, seed, only_rows=rows)
    test.data[:] = 1.0
    return GateSplit(train, test, rows, test.nnz / max(1, X.nnz))


def publishable(candidate: Recommender | None, gate: GateSplit, X: Any, refit: Callable[[], Recommender]) -> Recommender:
    """The model to publish: the gated candidate with its held-out users brought up to their whole
    rows of X, or, where the gate held out too much, nothing was gated, or the candidate cannot
    refresh its users as its fit solved them, `refit()`."""
    if candidate is None or gate.refit or not candidate.refreshes_users:
        return refit()
    candidate.refresh_users(gate.rows, X)
    return candidate


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

    gate = gate_split(data.matrix, seed)
    train, test = gate.train, gate.test
    report.gate_users, report.held_out_share = len(gate.rows), round(gate.held_out_share, 6)
    mark = time.perf_counter()
    choice: Choice = _choose(train, time_budget, seed, say, report.engine, memory_budget_bytes)
    clock["select"] = time.perf_counter() - mark
    report.algorithm, report.params = choice.kind, choice.params
    candidate: Recommender | None = None
    if test.nnz:
        mark = time.perf_counter()
        candidate = make(choice.kind, choice.params, model_name).fit(train)
        report.metrics = _holdout_metrics(candidate, train, test, gate.rows)
        report.baseline = _holdout_metrics(Popularity().fit(train), train, test, gate.rows)
        clock["evaluate"] = time.perf_counter() - mark
        say(f"held-out NDCG@100: {choice.kind} {report.metrics['ndcg@100']:.4f} "
            f"vs popularity {report.baseline['ndcg@100']:.4f} ({len(gate.rows)} users)")
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
    model = publishable(candidate, gate, data.matrix, lambda: make(choice.kind, choice.params, model_name).fit(data.matrix))
    report.refit = model is not candidate
    if not report.refit:
        say(f"published the gated model ({gate.held_out_share:.1%} of the entries were held out; no refit)")
    release()
    clock["fit"] = time.perf_counter() - mark
    if models_dir is not None:
        # the model, and what query processes need to fold users in with it (offline/training/fold_in.py):
        # the item statistics of the matrix it was fit on (an item seen only in held-out entries is
        # then cold for it, and cold-item slots may show it, as for any item the model never saw)
        fitted_on = data.matrix if report.refit else gate.train
        save_serving_artifacts(model.save(models_dir / model_name / version), data.items, fitted_on)
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
    rows = np.arange(len(data.users) if per_user > 0 else 0)  # 0: users are ranked on request (fold-in)
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
            "gate_users": report.gate_users, "held_out_share": report.held_out_share, "refit": report.refit}
