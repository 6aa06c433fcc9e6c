"""The per-user held-out split of contract §5, shared by everything that measures a model.

Each user's entries are split 80/20 at random (seeded), ``n_test = max(1, round_half_up(0.2 * n))``,
users with fewer than 5 entries are kept whole; rankings are cut at depth 100 (NDCG@100). The
trainer's quality gate, the tuner's validation split and the evaluation protocol
(offline.evaluation.protocol) all use this one definition.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

MIN_POSITIVES = 5
TEST_FRACTION = 0.2
RANK_DEPTH = 100


def n_heldout(n: np.ndarray, fraction: float = TEST_FRACTION) -> np.ndarray:
    """Held-out count per user: 20 % rounded half-up, at least one."""
    return np.maximum(1, np.floor(fraction * np.asarray(n) + 0.5)).astype(np.int64)


def split_matrix(
    X: sp.csr_matrix,
    seed: int,
    fraction: float = TEST_FRACTION,
    min_count: int = MIN_POSITIVES,
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Per-row random split of the stored entries of ``X`` into (keep, holdout).

    Rows with fewer than ``min_count`` entries are kept whole.  Vectorised:
    a random key per entry, sort by (row, key), hold out the first
    ``n_heldout`` of each row.  Deterministic for a given ``seed`` and
    matrix (input order does not matter, CSR indices are sorted).
    """
    X = sp.csr_matrix(X, dtype=np.float32)
    X.sort_indices()
    counts = np.diff(X.indptr)
    rows = np.repeat(np.arange(X.shape[0]), counts)
    key = np.random.default_rng(seed).random(rows.shape[0])
    order = np.lexsort((key, rows))
    rank = np.empty_like(order)
    rank[order] = np.arange(order.shape[0]) - X.indptr[rows[order]]
    n_out = np.where(counts >= min_count, n_heldout(counts, fraction), 0)
    hold = rank < n_out[rows]
    cols, vals = X.indices, X.data
    shape = X.shape
    keep = sp.csr_matrix((vals[~hold], (rows[~hold], cols[~hold])), shape=shape, dtype=np.float32)
    out = sp.csr_matrix((vals[hold], (rows[hold], cols[hold])), shape=shape, dtype=np.float32)
    keep.sort_indices()
    out.sort_indices()
    return keep, out
