"""Two protocols beside contract §5, for what query processes do without retraining.

Both start from §5's steps 1–2 (ratings > 3.5 are positives, users with ≥ 5 positives kept) and
report §5's metrics (Recall@20, Recall@50, NDCG@100, offline/training/metrics.py), averaged over
seeds. They run the serving code itself: offline/training/fold_in.py and offline/training/content.py
are what query processes call through offline/serving.py.

**Fold-in (strong generalization).** 10 % of the users (seeded) are held out of training whole.
Each held-out user's positives are split 80/20 by §5's per-user rule (offline/training/holdout.py);
the 80 % is the user's history, the 20 % is scored. Per model:
- *fold-in*: the model trained on the other 90 % of the users ranks for the history alone, through
  `FoldInModel` (ALS: one least-squares solve of the user's factors; EASE: history × B; blend:
  standardised components), history items excluded, items without training positives left out (as
  served);
- *retrain*: the same model trained on the 90 % plus the held-out users' histories, ranking them as
  §5 does — what a nightly retrain would give them.
- *popularity*: training-user counts, history excluded.

**Cold items.** 10 % of the items (seeded) are held out with all their interactions: the model never
saw anyone touch them, only the catalog knows them. For every user with a positive on a held-out
item (and at least one training positive), the held-out items are ranked by the content model: the
cosine of each item's content vector with the user's profile (the normalised sum of the vectors of
their training positives) — the rule that places cold items in served lists. Baselines: *random*
order, *popular-in-genre* (an item scores the mean over its categories of the category's share of
all training positives: non-personal), and, for reference, *genre-profile* (the user's own category
shares, averaged over the item's categories: a personal genre-only model).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from offline.evaluation.ratings_matrix import IdIndex, Ratings, build_matrix, load_ratings_csv
from offline.training.content import ContentIndex
from offline.training.fold_in import FoldInModel, top_k
from offline.training.holdout import MIN_POSITIVES, RANK_DEPTH, split_matrix
from offline.training.metrics import evaluate_rankings
from offline.training.models import ALS, EASE, Blend, ModelFactory, Popularity

POSITIVE_THRESHOLD = 3.5
DEFAULT_SEEDS = (0, 1, 2)
HELDOUT_FRACTION = 0.1
METRICS = ("recall@20", "recall@50", "ndcg@100")
ITEM_TYPE = "movie"


def fold_in_models() -> dict[str, ModelFactory]:
    """The fixed configurations of the §5 table (docs/model-quality.md)."""
    return {
        "als": lambda: ALS(factors=128, regularization=30.0, alpha=5.0, iterations=15),
        "ease": lambda: EASE(lam=200.0),
        "blend": lambda: Blend([EASE(lam=200.0, dropout=0.5), ALS(128, 60.0, 20.0)], [0.4, 0.6]),
    }


def positives_matrix(ratings: Ratings) -> tuple[sp.csr_matrix, IdIndex, IdIndex]:
    """§5 steps 1–2: binary users × items of positives, users with ≥ 5 of them."""
    pos = ratings.ratings > POSITIVE_THRESHOLD
    users, items = ratings.user_ids[pos], ratings.item_ids[pos]
    pairs = np.unique(np.stack([users, items], axis=1), axis=0) if users.size else np.empty((0, 2), np.int64)
    uid, count = np.unique(pairs[:, 0], return_counts=True)
    kept = np.isin(pairs[:, 0], uid[count >= MIN_POSITIVES])
    pairs = pairs[kept]
    uidx, iidx = IdIndex.from_ids(pairs[:, 0]), IdIndex.from_ids(pairs[:, 1])
    B = build_matrix(uidx.to_index(pairs[:, 0]), iidx.to_index(pairs[:, 1]), None, (len(uidx), len(iidx)))
    return B, uidx, iidx


def _held(n: int, seed: int, fraction: float = HELDOUT_FRACTION) -> np.ndarray:
    size = max(1, int(round(fraction * n)))
    return np.sort(np.random.default_rng(seed).choice(n, size=min(size, n), replace=False))


def _padded(rows: list[np.ndarray], width: int = RANK_DEPTH) -> np.ndarray:
    out = np.full((len(rows), width), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : min(width, r.shape[0])] = r[:width]
    return out


def _summary(per_seed: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    values = list(per_seed.values())
    return {
        "mean": {k: float(np.mean([v[k] for v in values])) for k in METRICS},
        "std": {k: float(np.std([v[k] for v in values])) for k in METRICS},
        "per_seed": {s: dict(v) for s, v in per_seed.items()},
    }


# -- fold-in ------------------------------------------------------------------------------------


def fold_in_rankings(fold: FoldInModel, history: sp.csr_matrix, depth: int = RANK_DEPTH) -> np.ndarray:
    """Top-`depth` columns per history row, as served: history excluded, items without training
    positives left out."""
    rows = []
    warm = fold.warm
    for u in range(history.shape[0]):
        start, stop = history.indptr[u], history.indptr[u + 1]
        idx = history.indices[start:stop].astype(np.int64)
        w = history.data[start:stop].astype(np.float64)
        scores = np.array(fold.score(idx, w), dtype=np.float32, copy=True)
        scores[idx] = -np.inf
        scores[~warm] = -np.inf
        rows.append(top_k(scores, depth))
    return _padded(rows, depth)


def run_fold_in_protocol(
    data: Ratings | str | Path,
    models: Mapping[str, ModelFactory] | None = None,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    user_fraction: float = HELDOUT_FRACTION,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    ratings = load_ratings_csv(data) if isinstance(data, (str, Path)) else data
    models = fold_in_models() if models is None else models
    B, _, _ = positives_matrix(ratings)
    per: dict[str, dict[str, dict[str, float]]] = {"popularity": {}}
    for name in models:
        per[f"{name}/fold-in"], per[f"{name}/retrain"] = {}, {}
    seconds: dict[str, list[float]] = {}
    held_count = 0
    for seed in seeds:
        held = _held(B.shape[0], seed, user_fraction)
        held_count = held.shape[0]
        rest = np.setdiff1d(np.arange(B.shape[0]), held)
        X = B[rest]
        history, test = split_matrix(B[held], seed)
        scored = np.flatnonzero(np.diff(test.indptr) > 0)
        history, test = history[scored], test[scored]
        keys = [str(i) for i in range(B.shape[1])]
        popularity = FoldInModel.from_model(Popularity().fit(X), keys, X)
        per["popularity"][str(seed)] = evaluate_rankings(fold_in_rankings(popularity, history), test)
        combined = sp.vstack([X, history], format="csr")
        rows = np.arange(X.shape[0], combined.shape[0])
        for name, factory in models.items():
            t0 = time.perf_counter()
            model = factory().fit(X)
            fold = FoldInModel.from_model(model, keys, X)
            t1 = time.perf_counter()
            fold_recs = fold_in_rankings(fold, history)
            t2 = time.perf_counter()
            per[f"{name}/fold-in"][str(seed)] = evaluate_rankings(fold_recs, test)
            retrained = factory().fit(combined)
            recs, _ = retrained.recommend(rows, combined, RANK_DEPTH, exclude_seen=True)
            per[f"{name}/retrain"][str(seed)] = evaluate_rankings(recs, test)
            seconds.setdefault(f"{name}/fit", []).append(t1 - t0)
            seconds.setdefault(f"{name}/fold-in per user ms", []).append(1000 * (t2 - t1) / max(1, history.shape[0]))
            if progress:
                progress(f"seed={seed} {name}: fold-in ndcg@100={per[f'{name}/fold-in'][str(seed)]['ndcg@100']:.4f} "
                         f"retrain {per[f'{name}/retrain'][str(seed)]['ndcg@100']:.4f} "
                         f"popularity {per['popularity'][str(seed)]['ndcg@100']:.4f}")
    out = {name: _summary(values) for name, values in per.items()}
    for name in models:
        retrain = out[f"{name}/retrain"]["mean"]["ndcg@100"]
        out[f"{name}/fold-in"]["ndcg_vs_retrain"] = out[f"{name}/fold-in"]["mean"]["ndcg@100"] / retrain if retrain else float("nan")
    return {
        "protocol": {
            "name": "fold-in (strong generalization)",
            "positive": f"rating > {POSITIVE_THRESHOLD}",
            "min_positives": MIN_POSITIVES,
            "heldout_users": user_fraction,
            "history_fraction": 0.8,
            "metrics": list(METRICS),
        },
        "seeds": list(seeds),
        "n_users": int(B.shape[0]),
        "n_items": int(B.shape[1]),
        "n_heldout_users": int(held_count),
        "models": out,
        "seconds": {k: float(np.mean(v)) for k, v in seconds.items()},
    }


# -- cold items ---------------------------------------------------------------------------------


def _genres(docs: Sequence[Mapping[str, Any] | None]) -> tuple[sp.csr_matrix, list[str]]:
    """Items × categories (binary), from catalog documents."""
    names: dict[str, int] = {}
    rows, cols = [], []
    for i, doc in enumerate(docs):
        for g in (doc or {}).get("categories") or ():
            rows.append(i)
            cols.append(names.setdefault(str(g).casefold(), len(names)))
    G = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(docs), max(1, len(names))))
    return G, list(names)


def _mean_over_genres(G: sp.csr_matrix, weights: np.ndarray) -> np.ndarray:
    """Per item: the mean of `weights` (per category, or users × categories) over its categories."""
    counts = np.asarray(G.sum(axis=1)).ravel()
    counts[counts == 0] = 1.0
    return np.asarray(G @ weights.T).T / counts


def run_cold_protocol(
    data: Ratings | str | Path,
    catalog: Mapping[str, Mapping[str, Any]],
    seeds: Sequence[int] = DEFAULT_SEEDS,
    item_fraction: float = HELDOUT_FRACTION,
    field_weights: Mapping[str, float] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """`catalog`: item id (as in the ratings) → catalog document (title, categories, …)."""
    ratings = load_ratings_csv(data) if isinstance(data, (str, Path)) else data
    B, _, items = positives_matrix(ratings)
    item_keys = [f"{ITEM_TYPE}:{i}" for i in items.ids]
    docs = {f"{ITEM_TYPE}:{k}": v for k, v in catalog.items()}
    for key in item_keys:  # an item the catalog lacks gets an empty document (it can only score 0)
        docs.setdefault(key, {})
    t0 = time.perf_counter()
    index = ContentIndex.build(docs, field_weights)  # metadata only: fitting on every catalogued item is fair
    build_s = time.perf_counter() - t0
    rows_of_item = index.rows_of(item_keys)
    G, _ = _genres([docs.get(k) for k in item_keys])
    per: dict[str, dict[str, dict[str, float]]] = {"content": {}, "random": {}, "popular-in-genre": {}, "genre-profile": {}}
    counts = {"users": 0, "items": 0}
    for seed in seeds:
        held = _held(B.shape[1], seed, item_fraction)
        kept = np.setdiff1d(np.arange(B.shape[1]), held)
        train, test = B[:, kept].tocsr(), B[:, held].tocsr()
        users = np.flatnonzero((np.diff(test.indptr) > 0) & (np.diff(train.indptr) > 0))
        counts = {"users": int(users.shape[0]), "items": int(held.shape[0])}
        held_rows = rows_of_item[held]
        content, rand, genre_pop, genre_user = [], [], [], []
        rng = np.random.default_rng(seed + 7919)
        share = np.asarray(train.sum(axis=0)).ravel() @ G[kept].toarray()  # training positives per category
        share = share / share.sum() if share.sum() else share
        pop_scores = _mean_over_genres(G[held], share[None, :])[0]
        user_genres = (train[users] @ G[kept]).toarray()
        user_genres = user_genres / np.maximum(user_genres.sum(axis=1, keepdims=True), 1.0)
        profile_scores = _mean_over_genres(G[held], user_genres)
        for n, u in enumerate(users):
            liked = [item_keys[c] for c in kept[train.indices[train.indptr[u]:train.indptr[u + 1]]]]
            profile = index.profile(dict.fromkeys(liked, 1.0))
            scores = index.affinity(profile, held_rows) if profile is not None else np.zeros(held.shape[0], np.float32)
            content.append(top_k(scores.astype(np.float32), RANK_DEPTH))
            rand.append(rng.permutation(held.shape[0])[:RANK_DEPTH])
            genre_pop.append(top_k(pop_scores.astype(np.float32), RANK_DEPTH))
            genre_user.append(top_k(profile_scores[n].astype(np.float32), RANK_DEPTH))
        heldout = test[users]
        for name, recs in (("content", content), ("random", rand), ("popular-in-genre", genre_pop), ("genre-profile", genre_user)):
            per[name][str(seed)] = evaluate_rankings(_padded(recs), heldout)
        if progress:
            progress(f"seed={seed} cold items: " + "  ".join(f"{k} ndcg@100={v[str(seed)]['ndcg@100']:.4f}" for k, v in per.items()))
    return {
        "protocol": {
            "name": "cold items",
            "positive": f"rating > {POSITIVE_THRESHOLD}",
            "min_positives": MIN_POSITIVES,
            "heldout_items": item_fraction,
            "candidates": "the held-out items",
            "metrics": list(METRICS),
        },
        "seeds": list(seeds),
        "n_users": int(B.shape[0]),
        "n_items": int(B.shape[1]),
        "n_heldout_items": counts["items"],
        "n_scored_users": counts["users"],
        "content_features": index.model.dimensions,
        "content_build_seconds": build_s,
        "models": {name: _summary(values) for name, values in per.items()},
    }


def movielens_catalog(folder: Path) -> dict[str, dict[str, Any]]:
    """movies.csv as the catalog documents the import appends (offline/ingest/movielens.py)."""
    from offline.ingest.movielens import catalog_events

    return {event.item_id: event.metadata() for event in catalog_events(Path(folder))}


def evaluate_fresh(
    dataset: Path,
    protocols: Sequence[str],
    seeds: Sequence[int] = DEFAULT_SEEDS,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """`movieaugur evaluate --protocol foldin|cold`: the chosen protocols on a MovieLens folder."""
    ratings = load_ratings_csv(dataset)
    out: dict[str, Any] = {}
    if "foldin" in protocols:
        out["foldin"] = run_fold_in_protocol(ratings, seeds=seeds, progress=progress)
    if "cold" in protocols:
        folder = dataset if dataset.is_dir() else dataset.parent
        out["cold"] = run_cold_protocol(ratings, movielens_catalog(folder), seeds=seeds, progress=progress)
    return out
