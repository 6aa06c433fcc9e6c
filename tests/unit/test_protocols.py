"""The two evaluation protocols beside contract §5 (offline/evaluation/fresh_protocols.py) on a small
synthetic dataset, and the math they share with the query processes: fold-in equals implicit's
recalculate_user and EASE/blend scoring, saved artifacts load back to the same scores, the
content index follows catalog changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from offline.evaluation.fresh_protocols import run_cold_protocol, run_fold_in_protocol
from offline.evaluation.ratings_matrix import Ratings
from offline.training.content import ContentIndex
from offline.training.fold_in import FoldInModel, FoldInUnavailable, load_fold_in, save_serving_artifacts, top_k
from offline.training.models import ALS, EASE, Blend

GENRES = ["Comedy", "Horror", "Drama", "Western"]


def synthetic(n_users: int = 300, n_items: int = 200, seed: int = 0) -> tuple[Ratings, dict[str, dict[str, Any]]]:
    """Users in four taste clusters rate mostly their cluster's items highly; each item's genre and
    decade follow its cluster (with some noise), so content carries the taste signal."""
    rng = np.random.default_rng(seed)
    clusters = len(GENRES)
    item_cluster = np.arange(n_items) % clusters
    appeal = rng.pareto(1.5, n_items) + 0.2
    users, items, ratings = [], [], []
    for u in range(n_users):
        c = int(rng.integers(clusters))
        own = np.flatnonzero(item_cluster == c)
        other = np.flatnonzero(item_cluster != c)
        size = min(own.shape[0], int(rng.integers(10, 25)))
        picks = rng.choice(own, size=size, replace=False, p=appeal[own] / appeal[own].sum())
        noise = rng.choice(other, size=4, replace=False)
        for i in picks:
            users.append(u + 1)
            items.append(i + 1)
            ratings.append(float(rng.choice([4.0, 4.5, 5.0])))
        for i in noise:
            users.append(u + 1)
            items.append(i + 1)
            ratings.append(float(rng.choice([1.0, 2.0, 3.0, 4.0])))
    catalog = {}
    for i in range(n_items):
        c = int(item_cluster[i]) if rng.random() > 0.1 else int(rng.integers(clusters))
        catalog[str(i + 1)] = {"title": f"Film {i + 1}", "categories": [GENRES[c]],
                               "release_date": str(1960 + 10 * c + int(rng.integers(10)))}
    n = len(users)
    return Ratings(np.asarray(users, np.int64), np.asarray(items, np.int64), np.asarray(ratings, np.float32),
                   np.zeros(n, np.int64)), catalog


def test_fold_in_protocol_reaches_the_retrain_and_beats_popularity() -> None:
    ratings, _ = synthetic()
    models = {"als": lambda: ALS(factors=16, regularization=5.0, alpha=5.0, iterations=10),
              "ease": lambda: EASE(lam=20.0)}
    result = run_fold_in_protocol(ratings, models=models, seeds=(0, 1))
    assert result["n_heldout_users"] == 30 and result["seeds"] == [0, 1]
    got = result["models"]
    popularity = got["popularity"]["mean"]["ndcg@100"]
    for name in models:
        fold_in, retrain = got[f"{name}/fold-in"]["mean"]["ndcg@100"], got[f"{name}/retrain"]["mean"]["ndcg@100"]
        assert fold_in >= 0.9 * retrain, (name, fold_in, retrain)
        assert fold_in > 1.2 * popularity, (name, fold_in, popularity)
        assert got[f"{name}/fold-in"]["ndcg_vs_retrain"] == pytest.approx(fold_in / retrain)
        assert set(got[f"{name}/fold-in"]["per_seed"]) == {"0", "1"}


def test_cold_protocol_content_beats_random_and_popular_in_genre() -> None:
    ratings, catalog = synthetic(n_items=500)
    result = run_cold_protocol(ratings, catalog, seeds=(0, 1))
    assert result["n_heldout_items"] == round(0.1 * result["n_items"]) and result["n_scored_users"] > 50
    got = {name: m["mean"] for name, m in result["models"].items()}
    for metric in ("recall@20", "ndcg@100"):
        assert got["content"][metric] > got["random"][metric]
        assert got["content"][metric] > got["popular-in-genre"][metric]


# -- the shared math ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def matrix() -> sp.csr_matrix:
    ratings, _ = synthetic(n_users=150, n_items=80, seed=3)
    X = sp.csr_matrix((np.ones(len(ratings), np.float32), (ratings.user_ids - 1, ratings.item_ids - 1)), shape=(150, 80))
    X.sum_duplicates()
    X.data[:] = np.where(np.arange(X.nnz) % 3 == 0, 3.0, 1.0)  # weights, as the trainer's matrix has
    return X


def _row(X: sp.csr_matrix, u: int) -> tuple[np.ndarray, np.ndarray]:
    row = X[u]
    return row.indices.astype(np.int64), row.data.astype(np.float64)


def test_als_fold_in_is_implicits_recalculate_user(matrix: sp.csr_matrix) -> None:
    model = ALS(factors=12, regularization=3.0, alpha=4.0, iterations=5).fit(matrix)
    fold = FoldInModel.from_model(model, [f"movie:{i}" for i in range(80)], matrix)
    appended = sp.vstack([matrix, matrix[:4]], format="csr")
    reference = model.user_vectors(np.arange(150, 154), appended)  # implicit's recalculate_user
    part = fold.parts[0][1]
    for u in range(4):
        assert np.allclose(part.user_vector(*_row(matrix, u)), reference[u], atol=1e-4)  # type: ignore[attr-defined]
        assert np.allclose(fold.score(*_row(matrix, u)), reference[u] @ model.item_factors.T, atol=1e-3)


def test_ease_and_blend_fold_in_score_as_the_models_do(matrix: sp.csr_matrix, tmp_path: Path) -> None:
    keys = [f"movie:{i}" for i in range(80)]
    ease = EASE(lam=10.0).fit(matrix)
    assert np.allclose(FoldInModel.from_model(ease, keys, matrix).score(*_row(matrix, 5)), ease.score(np.array([5]), matrix)[0], atol=1e-4)
    blend = Blend([EASE(lam=10.0), ALS(12, 3.0, 4.0, iterations=5)], [0.3, 0.7]).fit(matrix)
    directory = save_serving_artifacts(blend.save(tmp_path / "v1"), keys, matrix).parent
    loaded = load_fold_in(directory)
    assert loaded.kind == "blend" and loaded.keys == keys and loaded.warm.sum() == (np.diff(matrix.tocsc().indptr) > 0).sum()
    fresh = FoldInModel.from_model(blend, keys, matrix)
    assert np.allclose(loaded.score(*_row(matrix, 7)), fresh.score(*_row(matrix, 7)), atol=1e-4)
    order = top_k(loaded.score(*_row(matrix, 7)), 10)
    assert order.shape == (10,) and np.all(np.diff(loaded.score(*_row(matrix, 7))[order]) <= 0)
    with pytest.raises(FoldInUnavailable):
        load_fold_in(tmp_path / "missing")
    idx, w = loaded.user_input({"movie:1": 3.0, "movie:2": -3.0, "movie:unknown": 1.0, "movie:3": 500.0})
    assert sorted(idx.tolist()) == [1, 2, 3] and w.max() == 100.0  # capped as in training; unknown items ignored


def test_content_index_follows_the_catalog() -> None:
    docs = {f"movie:{i}": {"title": f"Film {i}", "categories": [("Comedy", "Drama")[i % 2]], "keywords": [f"k{i}"]}
            for i in range(10)}
    index = ContentIndex.build(docs)
    assert {k for k, _ in index.similar("movie:0", 4)} == {"movie:2", "movie:4", "movie:6", "movie:8"}
    index.upsert({"movie:new": {"categories": ["Drama"], "keywords": ["k3", "k5"]},
                  "movie:0": {"categories": ["Drama"], "keywords": ["k3", "k5"]}})
    assert len(index) == 11 and index.added_since_fit == 2 and index.unknown_tokens == 0
    assert index.similar("movie:new", 3)[0][0] == "movie:0"  # replaced: now the same as the new one
    assert all(k != "movie:0" for k, _ in index.similar("movie:2", 10))  # its comedy row is gone
    index.upsert({"movie:odd": {"categories": ["Horror"], "keywords": ["k1"]}})
    assert index.unknown_tokens == 1  # "horror" waits for the next fit (the runtime refits soon)
    profile = index.profile({"movie:1": 1.0, "movie:3": 3.0, "movie:2": -3.0})
    assert profile is not None
    assert index.top(index.affinity(profile), 1, exclude={"movie:1", "movie:3", "movie:new", "movie:0"})[0][0] in {
        "movie:5", "movie:7", "movie:9", "movie:odd"}
