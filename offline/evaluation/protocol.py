"""The offline evaluation protocol (contract §5) -- kept exactly as written.

1. ratings >= 4 (stored as > 3.5) are positives, everything else is dropped;
2. users with fewer than 5 positives are dropped;
3. each remaining user's positives are split 80/20 at random (seeded):
   ``n_test = max(1, round_half_up(0.2 * n))``;
4. models train on the training positives (binary); training items are
   excluded from ranking;
5. Recall@20, Recall@50 (hits / min(k, n_heldout)) and NDCG@100 (binary)
   are averaged over users, then over seeds 0, 1, 2.

The catalogue is the set of items that are positive for some kept user.
Models get only ``split.train``; anything they tune must be carved out of
it (see :mod:`offline.training.tuning`), never out of ``split.test``.
The per-user split (step 3) and the metrics (step 5) are defined once in
:mod:`offline.training.holdout` and :mod:`offline.training.metrics`, since
training's quality gate and tuner apply the same rules.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from offline.evaluation.ratings_matrix import IdIndex, Ratings, build_matrix, load_ratings_csv
from offline.training.holdout import MIN_POSITIVES, RANK_DEPTH, TEST_FRACTION, split_matrix
from offline.training.metrics import evaluate_rankings
from offline.training.models import ModelFactory, Recommender
from offline.training.tuning import default_models

POSITIVE_THRESHOLD = 3.5
DEFAULT_SEEDS = (0, 1, 2)
METRICS = ("recall@20", "recall@50", "ndcg@100")


@dataclass(frozen=True)
class Split:
    """One seeded train/test split of the positives."""

    train: sp.csr_matrix  # binary float32, users x items
    test: sp.csr_matrix  # binary float32, disjoint from train
    train_ratings: sp.csr_matrix  # star values of the training positives
    users: IdIndex  # row -> external user id
    items: IdIndex  # column -> external item id
    seed: int

    @property
    def test_users(self) -> np.ndarray:
        return np.flatnonzero(np.diff(self.test.indptr) > 0)


def _as_arrays(data: Ratings | tuple[np.ndarray, ...] | str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if isinstance(data, (str, Path)):
        data = load_ratings_csv(data)
    if isinstance(data, Ratings):
        return data.user_ids, data.item_ids, data.ratings
    users, items, ratings = data[0], data[1], data[2]
    return np.asarray(users, np.int64), np.asarray(items, np.int64), np.asarray(ratings, np.float32)


def split_positives(data: Ratings | tuple[np.ndarray, ...] | str | Path, seed: int) -> Split:
    """Apply steps 1-3 of the protocol to ratings (object, arrays or CSV path)."""
    users, items, ratings = _as_arrays(data)
    pos = ratings > POSITIVE_THRESHOLD
    users, items, ratings = users[pos], items[pos], ratings[pos]
    # count distinct positive items per user (duplicates must not inflate it)
    pairs = np.unique(np.stack([users, items], axis=1), axis=0) if users.size else np.empty((0, 2), np.int64)
    uid, cnt = np.unique(pairs[:, 0], return_counts=True)
    kept = np.isin(users, uid[cnt >= MIN_POSITIVES])
    users, items, ratings = users[kept], items[kept], ratings[kept]
    uidx, iidx = IdIndex.from_ids(users), IdIndex.from_ids(items)
    R = build_matrix(uidx.to_index(users), iidx.to_index(items), ratings, (len(uidx), len(iidx)))
    B = R.copy()
    B.data[:] = 1.0
    train, test = split_matrix(B, seed)
    train_ratings = R.multiply(train).tocsr().astype(np.float32)  # keeps star values on train cells only
    train_ratings.sort_indices()
    return Split(train, test, train_ratings, uidx, iidx, seed)


def evaluate_fitted(model: Recommender, split: Split) -> tuple[dict[str, float], float]:
    """Metrics of an already fitted model on ``split.test`` and ranking time (s)."""
    t0 = time.perf_counter()
    rows = split.test_users
    recs, _ = model.recommend(rows, split.train, RANK_DEPTH, exclude_seen=True)
    elapsed = time.perf_counter() - t0
    return evaluate_rankings(recs, split.test, rows), elapsed


def _summary(values: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([v[k] for v in values])) for k in values[0]}


def run_protocol(
    dataset_path: str | Path,
    models: Mapping[str, ModelFactory] | None = None,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Evaluate every model on every seed; JSON-ready result.

    ``models`` maps a report name to a zero-argument factory returning an
    unfitted :class:`Recommender` (default: :func:`offline.training.tuning.default_models`).
    Result layout::

        {"protocol": {...}, "dataset": str, "seeds": [...],
         "n_users": int, "n_items": int, "best": name,
         "models": {name: {"mean": {metric: float}, "std": {...},
                           "per_seed": {"0": {...}}, "fit_seconds": float,
                           "recommend_seconds": float, "params": {...},
                           "params_per_seed": {"0": {...}}}}}
    """
    if models is None:
        models = default_models()
    ratings = load_ratings_csv(dataset_path)
    results: dict[str, dict] = {name: {"per_seed": {}, "fit": [], "rank": []} for name in models}
    shape = (0, 0)
    for seed in seeds:
        split = split_positives(ratings, seed)
        shape = split.train.shape
        for name, factory in models.items():
            model = factory()
            t0 = time.perf_counter()
            model.fit(split.train)
            fit_s = time.perf_counter() - t0
            metrics, rank_s = evaluate_fitted(model, split)
            r = results[name]
            r["per_seed"][str(seed)] = metrics
            r["fit"].append(fit_s)
            r["rank"].append(rank_s)
            r["params"] = model.params
            r.setdefault("params_per_seed", {})[str(seed)] = model.params
            if progress:
                progress(f"seed={seed} {name}: ndcg@100={metrics['ndcg@100']:.4f} fit={fit_s:.1f}s")
    out_models = {}
    for name, r in results.items():
        per_seed = list(r["per_seed"].values())
        out_models[name] = {
            "mean": _summary(per_seed),
            "std": {k: float(np.std([v[k] for v in per_seed])) for k in METRICS},
            "per_seed": r["per_seed"],
            "fit_seconds": float(np.mean(r["fit"])),
            "recommend_seconds": float(np.mean(r["rank"])),
            "params": r.get("params", {}),  # last seed's (identical for fixed configs)
            "params_per_seed": r.get("params_per_seed", {}),
        }
    best = max(out_models, key=lambda n: out_models[n]["mean"]["ndcg@100"]) if out_models else None
    return {
        "protocol": {
            "positive": "rating > 3.5",
            "min_positives": MIN_POSITIVES,
            "test_fraction": TEST_FRACTION,
            "exclude_train_items": True,
            "metrics": list(METRICS),
        },
        "dataset": str(dataset_path),
        "seeds": list(seeds),
        "n_users": int(shape[0]),
        "n_items": int(shape[1]),
        "best": best,
        "models": out_models,
    }
