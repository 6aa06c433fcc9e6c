"""Most-popular baseline: the reference point every model must beat."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from offline.training.models.base import Recommender


class Popularity(Recommender):
    """Scores every item by how many training users interacted with it.

    Counts users (not summed weights), so a weighted input matrix does not
    change the ranking.  Same scores for every user by design.
    """

    kind = "popularity"

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name=name)
        self.counts: np.ndarray = np.zeros(0, dtype=np.float32)

    def _fit(self, X: sp.csr_matrix) -> None:
        self.counts = np.bincount(X.indices[X.data > 0], minlength=X.shape[1]).astype(np.float32)

    def score(self, user_rows: np.ndarray, X: sp.csr_matrix) -> np.ndarray:
        rows = np.asarray(user_rows).ravel()
        return np.broadcast_to(self.counts, (rows.shape[0], self.counts.shape[0]))

    def _state(self) -> dict[str, np.ndarray]:
        return {"counts": self.counts}

    def _set_state(self, arrays: dict[str, np.ndarray], directory: Path) -> None:
        self.counts = arrays["counts"].astype(np.float32)
