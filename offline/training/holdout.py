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
    only_rows: np.ndarray | None = None,
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Per-row random split of the stored entries of ``X`` into (keep, holdout).

    Rows with fewer than ``min_count`` entries are kept whole, and so is every row not in ``only_rows``
    when it is given (the trainer's gate holds out from a sample of users only); a row that is split
    is split exactly as it would be with ``only_rows=None``.  Vectorised:
    a random key per entry, sort by (row, key), hold out the first
    ``n_heldout`` of each row.  Deterministic for a given ``seed`` and
    matrix (input order does not matter, CSR indices are sorted).
    """
    X = sp.csr_matrix(X, dtype=np.float32)
    X.sum_duplicates()  # canonical: one entry per (row, column), sorted
    n_rows = X.shape[0]
    counts = np.diff(X.indptr)
    eligible = counts >= min_count
    if only_rows is not None:
        eligible &= np.isin(np.arange(n_rows), only_rows)
    rows = np.repeat(np.arange(n_rows), counts)
    key = np.random.default_rng(seed).random(rows.shape[0])
    # Only entries of rows that are split are sorted (a sampled gate at 20M: 3 % of them).
    split = np.flatnonzero(eligible[rows])
    order = split[np.lexsort((key[split], rows[split]))]
    block = np.where(eligible, counts, 0)
    block_start = np.cumsum(block) - block
    rank = np.arange(order.shape[0]) - block_start[rows[order]]
    n_out = np.where(eligible, n_heldout(counts, fraction), 0)
    hold = np.zeros(rows.shape[0], dtype=bool)
    hold[order[rank < n_out[rows[order]]]] = True
    # Masking keeps each row's entries in CSR order: no COO round trip, no re-sort.
    held_per_row = np.bincount(rows[hold], minlength=n_rows)
    return _rows_of(X, ~hold, counts - held_per_row), _rows_of(X, hold, held_per_row)


def _rows_of(X: sp.csr_matrix, mask: np.ndarray, per_row: np.ndarray) -> sp.csr_matrix:
    indptr = np.concatenate(([0], np.cumsum(per_row))).astype(X.indptr.dtype)
    return sp.csr_matrix((X.data[mask], X.indices[mask], indptr), shape=X.shape, dtype=np.float32)
