"""Top-N ranking metrics of the evaluation contract (§5).

All metrics work on a whole batch at once: a matrix of recommended item
indices (one row per user, best first) and a sparse matrix of held-out
items.  Definitions are fixed by the contract and must not drift:

* Recall@k  = hits in the top k / min(k, n_heldout)   (normalised recall, so
  a perfect ranker scores 1.0 even for users with many held-out items)
* NDCG@k    = DCG@k / IDCG@k with binary relevance, gain 1/log2(rank+2)
  for 0-based rank, and IDCG over min(k, n_heldout) relevant items.

Users without held-out items are excluded from the mean (they carry no
signal); the protocol never produces such users anyway.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

_CHUNK = 2048


def hit_matrix(recs: np.ndarray, heldout: sp.csr_matrix, user_rows: np.ndarray | None = None) -> np.ndarray:
    """Boolean [len(users) x k]: is ``recs[u, r]`` among user u's held-out items.

    ``user_rows`` selects the rows of ``heldout`` that correspond to the rows
    of ``recs`` (default: the first ``len(recs)`` rows in order).  Rows are
    densified in chunks, which is far faster than per-user ``np.isin`` and
    bounded in memory.
    """
    recs = np.asarray(recs)
    heldout = sp.csr_matrix(heldout)
    rows = np.arange(recs.shape[0]) if user_rows is None else np.asarray(user_rows)
    out = np.zeros(recs.shape, dtype=bool)
    for start in range(0, recs.shape[0], _CHUNK):
        sl = slice(start, start + _CHUNK)
        dense = heldout[rows[sl]].toarray() > 0
        valid = recs[sl] >= 0  # -1 marks "no recommendation" padding
        picked = np.take_along_axis(dense, np.where(valid, recs[sl], 0), axis=1)
        out[sl] = picked & valid
    return out


def _n_heldout(heldout: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    return np.diff(sp.csr_matrix(heldout).indptr)[rows].astype(np.float64)


def recall_at_k(hits: np.ndarray, n_heldout: np.ndarray, k: int) -> np.ndarray:
    """Per-user normalised recall; NaN for users without held-out items."""
    denom = np.minimum(k, n_heldout).astype(np.float64)
    num = hits[:, :k].sum(axis=1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, num / np.where(denom > 0, denom, 1), np.nan)


def ndcg_at_k(hits: np.ndarray, n_heldout: np.ndarray, k: int) -> np.ndarray:
    """Per-user binary NDCG; NaN for users without held-out items."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    h = hits[:, :k].astype(np.float64)
    dcg = h @ discounts[: h.shape[1]]
    cum = np.concatenate([[0.0], np.cumsum(discounts)])
    ideal = cum[np.minimum(k, n_heldout).astype(np.int64)]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ideal > 0, dcg / np.where(ideal > 0, ideal, 1), np.nan)


def evaluate_rankings(
    recs: np.ndarray,
    heldout: sp.csr_matrix,
    user_rows: np.ndarray | None = None,
) -> dict[str, float]:
    """Contract metrics (recall@20, recall@50, ndcg@100) averaged over users.

    ``recs`` must contain at least 100 columns for ndcg@100 to be exact
    (fewer columns simply count as misses, as for a catalogue smaller than k).
    """
    rows = np.arange(recs.shape[0]) if user_rows is None else np.asarray(user_rows)
    hits = hit_matrix(recs, heldout, rows)
    n = _n_heldout(heldout, rows)
    return {
        "recall@20": float(np.nanmean(recall_at_k(hits, n, 20))),
        "recall@50": float(np.nanmean(recall_at_k(hits, n, 50))),
        "ndcg@100": float(np.nanmean(ndcg_at_k(hits, n, 100))),
    }
