"""Loading MovieLens-style ratings into arrays and sparse matrices.

What the evaluation protocol reads (training reads the event log instead,
see :mod:`offline.training.interaction_matrix`).  pandas is not a
dependency of the project, so the CSV is parsed with numpy directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class Ratings:
    """Raw explicit ratings as parallel arrays (one entry per rating)."""

    user_ids: np.ndarray  # int64 external user ids
    item_ids: np.ndarray  # int64 external item (movie) ids
    ratings: np.ndarray  # float32 star values
    timestamps: np.ndarray  # int64 unix seconds

    def __len__(self) -> int:
        return int(self.user_ids.shape[0])


def load_ratings_csv(path: str | Path) -> Ratings:
    """Read a ``userId,movieId,rating,timestamp`` CSV (header line required).

    ``path`` may be the CSV itself or a directory that contains
    ``ratings.csv`` (the layout of ml-latest-small).  ``np.loadtxt`` with a
    fixed float64 dtype reads the 100k-row file in well under a second and
    keeps ids exact (ids are < 2**53).
    """
    p = Path(path)
    if p.is_dir():
        p = p / "ratings.csv"
    data = np.loadtxt(p, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    if data.shape[0] == 0:
        empty = np.empty(0, dtype=np.int64)
        return Ratings(empty, empty, np.empty(0, dtype=np.float32), empty)
    return Ratings(
        user_ids=data[:, 0].astype(np.int64),
        item_ids=data[:, 1].astype(np.int64),
        ratings=data[:, 2].astype(np.float32),
        timestamps=data[:, 3].astype(np.int64),
    )


@dataclass(frozen=True)
class IdIndex:
    """Bidirectional map between external ids and dense matrix rows/columns."""

    ids: np.ndarray  # sorted unique external ids; position == dense index

    @classmethod
    def from_ids(cls, ids: np.ndarray) -> IdIndex:
        return cls(np.unique(np.asarray(ids, dtype=np.int64)))

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def to_index(self, ids: np.ndarray) -> np.ndarray:
        """Dense indices for ``ids``; -1 for ids not in the index."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(self) == 0:
            return np.full(ids.shape, -1, dtype=np.int64)
        pos = np.clip(np.searchsorted(self.ids, ids), 0, len(self) - 1)
        return np.where(self.ids[pos] == ids, pos, -1).astype(np.int64)

    def to_ids(self, index: np.ndarray) -> np.ndarray:
        return self.ids[np.asarray(index, dtype=np.int64)]


def build_matrix(
    rows: np.ndarray,
    cols: np.ndarray,
    values: np.ndarray | None,
    shape: tuple[int, int],
) -> sp.csr_matrix:
    """A float32 CSR matrix; duplicate (row, col) pairs keep the maximum value.

    Duplicates would otherwise be summed by scipy, which silently turns a
    re-rated movie into a "double positive"; taking the max is idempotent.
    """
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    vals = np.ones(rows.shape[0], np.float32) if values is None else np.asarray(values, np.float32)
    if rows.size:
        order = np.lexsort((-vals, cols, rows))
        rows, cols, vals = rows[order], cols[order], vals[order]
        first = np.ones(rows.shape[0], dtype=bool)
        first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
        rows, cols, vals = rows[first], cols[first], vals[first]
    m = sp.csr_matrix((vals, (rows, cols)), shape=shape, dtype=np.float32)
    m.sort_indices()
    return m

