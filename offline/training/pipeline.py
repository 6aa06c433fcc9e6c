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

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from domain.events import ModelPublished, RecommendationsPublished, SimilarItemsPublished
from domain.ports import EventLog
from domain.weights import ActionWeights
from offline.training.holdout import RANK_DEPTH, split_matrix
from offline.training.interaction_matrix import InteractionMatrix, load_interactions
from offline.training.metrics import evaluate_rankings
from offline.training.models import Popularity, Recommender, build_model
from offline.training.selection import Choice, choose_model
from offline.training.similar_items import similar_items

PUBLISH_BATCH = 2000


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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _holdout_metrics(model: Recommender, train, test) -> dict[str, float]:
    rows = np.flatnonzero(np.diff(test.indptr) > 0)
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
) -> TrainReport:
    say = progress or (lambda _: None)
    clock: dict[str, float] = {}
    started = time.perf_counter()
    data: InteractionMatrix = await load_interactions(log, weights, half_life_days)
    clock["load"] = time.perf_counter() - started
    version = new_version()
    report = TrainReport(model_name, version, False, "", users=len(data.users), items=len(data.items), events=data.events)
    say(f"read {data.events} interactions ({data.duplicates} duplicates skipped): "
        f"{len(data.users)} users × {len(data.items)} items")
    if data.matrix.nnz == 0:
        report.reason = "the log holds no positive interactions yet; nothing to train on"
        return report

    train, test = split_matrix(data.matrix, seed)
    test.data[:] = 1.0
    mark = time.perf_counter()
    choice: Choice = choose_model(train, time_budget=time_budget, seed=seed, progress=say)
    clock["select"] = time.perf_counter() - mark
    report.algorithm, report.params = choice.kind, choice.params
    if test.nnz:
        mark = time.perf_counter()
        candidate = build_model(choice.kind, choice.params).fit(train)
        report.metrics = _holdout_metrics(candidate, train, test)
        report.baseline = _holdout_metrics(Popularity().fit(train), train, test)
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
    model = build_model(choice.kind, choice.params, name=model_name).fit(data.matrix)
    clock["fit"] = time.perf_counter() - mark
    if models_dir is not None:
        model.save(models_dir / model_name / version)
    mark = time.perf_counter()
    published = await _publish(log, model, data, model_name, version, recommendations_per_user, say)
    clock["publish"] = time.perf_counter() - mark
    await log.append([
        ModelPublished.new(
            model=model_name,
            model_version=version,
            algorithm=choice.kind,
            params=choice.params,
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


def _ranked(keys: list[str], idx: np.ndarray, scores: np.ndarray) -> list[dict[str, Any]]:
    out = []
    for i, score in zip(idx, scores, strict=True):
        if i < 0:
            break
        item_type, _, item_id = keys[i].partition(":")
        out.append({"item_type": item_type, "item_id": item_id, "score": round(float(score), 6)})
    return out


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
    batch: list = []
    published = 0
    for start in range(0, len(rows), 1024):
        chunk = rows[start : start + 1024]
        idx, scores = model.recommend(chunk, data.matrix, per_user, exclude_seen=True)
        for row, r_idx, r_scores in zip(chunk, idx, scores, strict=True):
            items = _ranked(data.items, r_idx, r_scores)
            if items:
                batch.append(RecommendationsPublished.new(
                    model=name, model_version=version, user_id=data.users[row], items=items
                ))
                published += 1
        if len(batch) >= PUBLISH_BATCH:
            await log.append(batch)
            batch = []
    sim_idx, sim_scores = similar_items(data.matrix)
    for column, (r_idx, r_scores) in enumerate(zip(sim_idx, sim_scores, strict=True)):
        items = _ranked(data.items, r_idx, r_scores)
        if items:
            item_type, _, item_id = data.items[column].partition(":")
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
