"""Model behaviour on tiny synthetic matrices (fast; no MovieLens)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from offline.training.models import ALS, EASE, Blend, Popularity, load_model, top_n
from offline.training.models.als import weight_matrix
from offline.training.tuning import AutoRecommender, tune


def _random_matrix(n_users: int = 60, n_items: int = 40, density: float = 0.15, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    # two taste clusters so models have something to learn
    dense = rng.random((n_users, n_items)) < density
    dense[: n_users // 2, : n_items // 2] |= rng.random((n_users // 2, n_items // 2)) < 0.4
    dense[n_users // 2 :, n_items // 2 :] |= rng.random((n_users - n_users // 2, n_items - n_items // 2)) < 0.4
    return sp.csr_matrix(dense.astype(np.float32))


def _models() -> list:
    return [
        Popularity(),
        EASE(lam=5.0),
        EASE(lam=5.0, dropout=0.3),
        ALS(factors=8, regularization=1.0, alpha=2.0, iterations=5),
        Blend([EASE(lam=5.0), ALS(factors=8, regularization=1.0, iterations=5)], [0.5, 0.5]),
    ]


def test_ease_matches_direct_numpy_solve() -> None:
    X = _random_matrix()
    lam = 7.0
    model = EASE(lam=lam).fit(X)
    G = (X.T @ X).toarray().astype(np.float64)
    P = np.linalg.inv(G + lam * np.eye(G.shape[0]))
    B = np.eye(G.shape[0]) - P / np.diag(P)
    B_model = np.zeros_like(B)
    B_model[np.ix_(model.active, model.active)] = model.B
    np.testing.assert_allclose(B_model, B, atol=1e-5)
    assert np.allclose(np.diag(B_model), 0.0)
    np.testing.assert_allclose(model.score(np.arange(5), X), X[:5].toarray() @ B, atol=1e-4)


def test_ease_dropout_is_frequency_aware_ridge() -> None:
    X = _random_matrix(seed=2)
    lam, p = 3.0, 0.25
    G = (X.T @ X).toarray().astype(np.float64)
    P = np.linalg.inv(G + np.diag(lam + p / (1 - p) * np.diag(G)))
    B = np.eye(G.shape[0]) - P / np.diag(P)
    model = EASE(lam=lam, dropout=p).fit(X)
    np.testing.assert_allclose(model.B, B[np.ix_(model.active, model.active)], atol=1e-5)


def test_ease_ignores_unseen_items_and_refuses_huge_catalogue() -> None:
    X = _random_matrix().tolil()
    X[:, 3] = 0
    X = X.tocsr()
    X.eliminate_zeros()
    model = EASE(lam=5.0).fit(X)
    assert 3 not in model.active and model.score(np.arange(4), X)[:, 3].tolist() == [0.0] * 4
    with pytest.raises(MemoryError):
        EASE(max_items=10).fit(X)


@pytest.mark.parametrize("model", _models(), ids=lambda m: f"{m.kind}")
def test_recommend_excludes_seen_and_is_sorted(model) -> None:
    X = _random_matrix()
    model.fit(X)
    rows = np.array([0, 5, 33, 59])
    idx, scores = model.recommend(rows, X, n=10)
    assert idx.shape == (4, 10) and scores.dtype == np.float32
    for k, u in enumerate(rows):
        seen = set(X[u].indices.tolist())
        assert not seen & set(idx[k].tolist())
        assert len(set(idx[k].tolist())) == 10
    assert (np.diff(scores, axis=1) <= 1e-6).all()
    # without exclusion seen items may appear and the catalogue bound is respected
    idx_all, _ = model.recommend(rows, X, n=1000, exclude_seen=False)
    assert idx_all.shape == (4, X.shape[1]) and (idx_all >= 0).all()


def test_recommend_pads_with_minus_one_when_catalogue_exhausted() -> None:
    X = sp.csr_matrix(np.array([[1, 1, 1, 0], [1, 0, 0, 0], [0, 1, 1, 1]], dtype=np.float32))
    idx, scores = Popularity().fit(X).recommend(np.array([0]), X, n=3)
    assert idx.tolist() == [[3, -1, -1]] and np.isneginf(scores[0, 1:]).all()


def test_recommend_chunks_users(monkeypatch) -> None:
    X = _random_matrix()
    model = EASE(lam=5.0).fit(X)
    full, _ = model.recommend(np.arange(60), X, n=5)
    monkeypatch.setattr(model, "_chunk_rows", lambda: 7)
    chunked, _ = model.recommend(np.arange(60), X, n=5)
    np.testing.assert_array_equal(full, chunked)


@pytest.mark.parametrize("model", _models(), ids=lambda m: f"{m.kind}")
def test_save_load_round_trip(model, tmp_path) -> None:
    X = _random_matrix(seed=4)
    model.fit(X)
    rows = np.arange(X.shape[0])
    before = model.recommend(rows, X, n=10)
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert type(loaded) is type(model) and loaded.params == model.params and loaded.name == model.name
    after = loaded.recommend(rows, X, n=10)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])


def test_als_folds_in_unknown_users() -> None:
    X = _random_matrix()
    model = ALS(factors=8, regularization=1.0, iterations=5).fit(X[:50])
    X_new = sp.vstack([X[:50], X[50:]]).tocsr()
    idx, _ = model.recommend(np.array([55]), X_new, n=5)
    assert idx.shape == (1, 5) and not set(idx[0]) & set(X_new[55].indices)


def test_weighting_variants_keep_pattern() -> None:
    X = _random_matrix()
    for w in ("none", "bm25", "tfidf"):
        W = weight_matrix(X, w)
        assert (W != 0).nnz == X.nnz and (W.data > 0).all()
    with pytest.raises(ValueError):
        weight_matrix(X, "nope")


def test_top_n_tie_break_is_deterministic() -> None:
    idx, vals = top_n(np.array([[1.0, 3.0, 3.0, -np.inf]], dtype=np.float32), 4)
    assert idx.tolist() == [[1, 2, 0, -1]]


def test_tune_uses_budget_and_returns_buildable_winner(tmp_path) -> None:
    X = _random_matrix(n_users=80, n_items=30, seed=5)
    res = tune(X, budget_seconds=5.0, candidates=("ease", "als", "blend"))
    assert res.best["kind"] in {"ease", "als", "blend"}
    assert {t["kind"] for t in res.trials} >= {"ease", "als"}
    assert res.best_metrics["ndcg@100"] == max(t["metrics"]["ndcg@100"] for t in res.trials)
    auto = AutoRecommender(budget_seconds=2.0, candidates=("als",)).fit(X)
    assert auto.params["chosen"]["kind"] == "als"
    auto.save(tmp_path / "auto")
    assert (tmp_path / "auto" / "tuning.json").exists()
    loaded = load_model(tmp_path / "auto")
    np.testing.assert_array_equal(loaded.recommend(np.arange(5), X, 5)[0], auto.recommend(np.arange(5), X, 5)[0])


def _dense_reference(model, rows: np.ndarray, X: sp.csr_matrix, n: int) -> tuple[np.ndarray, np.ndarray]:
    """What recommend means: score every item, mask what the user has seen, sort every row fully
    (best first, ties by the lower item index), keep the first n, -1 where only masked ones remain."""
    scores = np.array(model.score(rows, X), dtype=np.float32, copy=True)
    scores[X[rows].toarray() != 0] = -np.inf
    order = np.lexsort((np.broadcast_to(np.arange(scores.shape[1]), scores.shape), -scores), axis=1)[:, :n]
    vals = np.take_along_axis(scores, order, axis=1)
    return np.where(np.isneginf(vals), -1, order), vals


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n", [1, 10, 39, 60])
def test_fast_ranking_paths_equal_the_dense_definition(seed: int, n: int) -> None:
    """ALS ranks through implicit's fused top-k and popularity through one sorted order; both
    must give what masking a dense score matrix gives, padding and tie order included."""
    dense = _random_matrix(n_users=80, n_items=40, density=0.3, seed=seed).toarray()
    dense[7] = 1.0  # a user who has seen everything: nothing left to recommend
    X = sp.csr_matrix(dense)
    rows = np.arange(X.shape[0])
    for model in (Popularity().fit(X), ALS(factors=8, regularization=1.0, iterations=3, random_state=seed).fit(X)):
        idx, vals = model.recommend(rows, X, n)
        ref_idx, ref_vals = _dense_reference(model, rows, X, n)
        np.testing.assert_array_equal(idx, ref_idx)
        np.testing.assert_allclose(vals, ref_vals, rtol=1e-5)
    assert (idx[7] == -1).all()
