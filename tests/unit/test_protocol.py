"""Protocol (§5) and metric definitions on tiny, hand-checkable inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from offline.evaluation.protocol import split_positives
from offline.evaluation.ratings_matrix import IdIndex, build_matrix, load_ratings_csv
from offline.training.holdout import n_heldout, split_matrix
from offline.training.metrics import evaluate_rankings, hit_matrix, ndcg_at_k, recall_at_k


def _csr(rows: list[list[int]], n_items: int) -> sp.csr_matrix:
    r = [u for u, items in enumerate(rows) for _ in items]
    c = [i for items in rows for i in items]
    return sp.csr_matrix((np.ones(len(c), np.float32), (r, c)), shape=(len(rows), n_items))


# ---------------------------------------------------------------- metrics
def test_recall_uses_min_k_heldout() -> None:
    heldout = _csr([[0, 1, 2], [5]], 30)
    recs = np.array([[0, 9, 1] + [20] * 0, [7, 8, 5]])
    hits = hit_matrix(recs, heldout)
    assert hits.tolist() == [[True, False, True], [False, False, True]]
    n = np.array([3.0, 1.0])
    # user 0: 2 hits / min(20, 3) ; user 1: 1 / min(20, 1)
    np.testing.assert_allclose(recall_at_k(hits, n, 20), [2 / 3, 1.0])
    # k=2 truncates: user 0 one hit / min(2, 3) = 1/2 ; user 1 zero hits in top 2
    np.testing.assert_allclose(recall_at_k(hits, n, 2), [0.5, 0.0])


def test_ndcg_hand_computed() -> None:
    heldout = _csr([[0, 1, 2]], 10)
    recs = np.array([[0, 9, 1, 8]])
    hits = hit_matrix(recs, heldout)
    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    idcg = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    np.testing.assert_allclose(ndcg_at_k(hits, np.array([3.0]), 100), [dcg / idcg])
    # ideal DCG over min(k, n_heldout): with k=2 only two relevant slots count
    idcg2 = 1 / math.log2(2) + 1 / math.log2(3)
    np.testing.assert_allclose(ndcg_at_k(hits, np.array([3.0]), 2), [1.0 / idcg2])


def test_perfect_ranking_scores_one_and_padding_is_a_miss() -> None:
    heldout = _csr([[3, 4], [1]], 8)
    recs = np.array([[4, 3, -1], [1, -1, -1]])
    m = evaluate_rankings(recs, heldout)
    assert m == pytest.approx({"recall@20": 1.0, "recall@50": 1.0, "ndcg@100": 1.0})
    assert not hit_matrix(np.array([[-1, -1]]), _csr([[0]], 2)).any()


# ---------------------------------------------------------------- split
def _toy_ratings(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    users, items, ratings = [], [], []
    for u in range(1, 41):
        n = int(rng.integers(2, 30))
        for i in rng.choice(200, size=n, replace=False):
            users.append(u * 10)
            items.append(int(i) + 1000)
            ratings.append(float(rng.choice([1.0, 2.5, 3.5, 4.0, 4.5, 5.0])))
    return np.array(users), np.array(items), np.array(ratings, np.float32)


def test_split_properties() -> None:
    users, items, ratings = _toy_ratings()
    s = split_positives((users, items, ratings), seed=3)
    pos = ratings > 3.5
    # users with < 5 positives are gone, all others present
    uid, cnt = np.unique(users[pos], return_counts=True)
    assert set(s.users.ids.tolist()) == set(uid[cnt >= 5].tolist())
    # train and test are disjoint and together are exactly the positives of kept users
    assert s.train.multiply(s.test).nnz == 0
    both = (s.train + s.test).tocoo()
    got = set(zip(s.users.to_ids(both.row).tolist(), s.items.to_ids(both.col).tolist(), strict=True))
    keep = np.isin(users, s.users.ids) & pos
    assert got == set(zip(users[keep].tolist(), items[keep].tolist(), strict=True))
    # 80/20 per user, at least one held out
    n_tr, n_te = np.diff(s.train.indptr), np.diff(s.test.indptr)
    np.testing.assert_array_equal(n_te, n_heldout(n_tr + n_te))
    assert (n_te >= 1).all()
    # training ratings only carry >= 4 stars, on the training cells
    assert s.train_ratings.nnz == s.train.nnz and s.train_ratings.data.min() >= 4.0


def test_split_deterministic_per_seed_and_order_free() -> None:
    users, items, ratings = _toy_ratings()
    a = split_positives((users, items, ratings), seed=1)
    b = split_positives((users, items, ratings), seed=1)
    perm = np.random.default_rng(9).permutation(users.shape[0])
    c = split_positives((users[perm], items[perm], ratings[perm]), seed=1)
    d = split_positives((users, items, ratings), seed=2)
    for x in (b, c):
        assert (a.test != x.test).nnz == 0 and (a.train != x.train).nnz == 0
    assert (a.test != d.test).nnz > 0


def test_n_heldout_rounding() -> None:
    assert n_heldout(np.array([5, 7, 8, 10, 12, 13])).tolist() == [1, 1, 2, 2, 2, 3]


def test_split_matrix_keeps_small_rows_whole() -> None:
    X = _csr([[0, 1, 2], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]], 10)
    keep, out = split_matrix(X, seed=0)
    assert out[0].nnz == 0 and keep[0].nnz == 3
    assert out[1].nnz == 2 and keep[1].nnz == 8


def test_split_matrix_of_some_rows_splits_them_as_the_whole_split_does() -> None:
    rng = np.random.default_rng(4)
    X = sp.random(40, 30, density=0.4, format="csr", random_state=rng, dtype=np.float32)
    X.data[:] = rng.integers(1, 5, X.nnz)
    only = np.array([1, 5, 6, 20, 39])
    keep_all, out_all = split_matrix(X, seed=3)
    keep, out = split_matrix(X, seed=3, only_rows=only)
    others = np.setdiff1d(np.arange(40), only)
    assert out[others].nnz == 0 and (keep[others] != X[others]).nnz == 0
    assert (out[only] != out_all[only]).nnz == 0 and (keep[only] != keep_all[only]).nnz == 0
    assert out[only].nnz > 0 and (keep + out != X).nnz == 0


def test_build_matrix_dedupes_and_index_roundtrip(tmp_path) -> None:
    M = build_matrix(np.array([0, 0, 1]), np.array([2, 2, 0]), np.array([4.0, 5.0, 3.0]), (2, 3))
    assert M.nnz == 2 and M[0, 2] == 5.0
    idx = IdIndex.from_ids(np.array([30, 10, 20, 10]))
    assert idx.to_index(np.array([20, 99])).tolist() == [1, -1]
    assert idx.to_ids(np.array([0, 2])).tolist() == [10, 30]
    p = tmp_path / "ratings.csv"
    p.write_text("userId,movieId,rating,timestamp\n1,10,4.0,100\n2,11,3.5,200\n")
    r = load_ratings_csv(tmp_path)
    assert r.user_ids.tolist() == [1, 2] and r.ratings.tolist() == [4.0, 3.5] and len(r) == 2
