"""Similar items against their definition: the cosine of two items' columns of who interacted."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from offline.training.similar_items import similar_items


def dense_cosine(X: sp.csr_matrix) -> np.ndarray:
    B = np.zeros(X.shape)
    B[X.nonzero()] = 1.0  # a stored entry is an interaction, whatever its weight
    norms = np.sqrt(B.sum(axis=0))
    norms[norms == 0] = 1.0
    return (B.T @ B) / np.outer(norms, norms)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    users=st.integers(1, 60),
    items=st.integers(1, 40),
    density=st.floats(0.0, 0.5),
    n=st.integers(1, 25),
)
def test_each_list_holds_the_best_other_items_by_cosine(seed: int, users: int, items: int, density: float, n: int) -> None:
    rng = np.random.default_rng(seed)
    X = sp.random(users, items, density=density, format="csr", random_state=rng, dtype=np.float32)
    X.data[:] = rng.choice([-1.0, 0.5, 3.0], X.nnz)  # any stored entry counts, dislikes too
    cosine = dense_cosine(X)
    idx, scores = similar_items(X, n)
    width = min(n, max(items - 1, 0))
    assert idx.shape == scores.shape == (items, width)
    for item in range(items):
        others = np.delete(np.arange(items), item)
        candidates = np.sort(cosine[item, others][cosine[item, others] > 1e-9])[::-1][:width]
        listed = idx[item][idx[item] >= 0]
        assert item not in listed and len(set(listed.tolist())) == len(listed)
        assert len(listed) == len(candidates)  # every positive similarity up to n, nothing else
        np.testing.assert_allclose(scores[item][: len(listed)], candidates, atol=1e-5)
        np.testing.assert_allclose(cosine[item, listed], candidates, atol=1e-5)  # the scores are those items'
        assert np.isneginf(scores[item][len(listed):]).all() and (idx[item][len(listed):] == -1).all()
