"""Score-level blend of several recommenders (typically EASE + ALS).

EASE and ALS make different errors (item-item co-occurrence vs. low-rank
user taste), so a weighted sum of their scores ranks better than either.
Raw scores live on unrelated scales, hence each component's scores are
standardised per user (z-score over the catalogue) before mixing.  The
weights are not learned here; :mod:`offline.training.tuning` picks them on a
validation split and passes them in.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from offline.training.models.base import Recommender


def standardize(scores: np.ndarray) -> np.ndarray:
    """Per-row z-score (float32); constant rows become all zeros."""
    s = np.asarray(scores, dtype=np.float32)
    mu = s.mean(axis=1, keepdims=True)
    sd = s.std(axis=1, keepdims=True)
    sd[sd == 0] = 1.0
    return (s - mu) / sd


def blend_scores(scores: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Weighted sum of per-user standardised score blocks."""
    if len(scores) != len(weights) or not scores:
        raise ValueError("need one weight per score block")
    out = np.zeros(np.shape(scores[0]), dtype=np.float32)
    for s, w in zip(scores, weights, strict=True):
        if w:
            out += np.float32(w) * standardize(s)
    return out


class Blend(Recommender):
    """Weighted, standardised sum of component model scores."""

    kind = "blend"

    def __init__(
        self,
        components: Sequence[Recommender],
        weights: Sequence[float],
        name: str | None = None,
    ) -> None:
        if len(components) != len(weights) or not components:
            raise ValueError("Blend needs one weight per component")
        super().__init__(
            name=name,
            weights=[float(w) for w in weights],
            components=[{"kind": c.kind, "name": c.name, "params": c.params} for c in components],
        )
        self.components: list[Recommender] = list(components)

    def _fit(self, X: sp.csr_matrix) -> None:
        for c in self.components:
            c.fit(X)

    def refresh_users(self, user_rows: np.ndarray, X: sp.spmatrix) -> None:
        for c in self.components:
            c.refresh_users(user_rows, X)

    def score(self, user_rows: np.ndarray, X: sp.csr_matrix) -> np.ndarray:
        blocks = [c.score(user_rows, X) for c in self.components]
        return blend_scores(blocks, self.params["weights"])

    @staticmethod
    def component_dir(directory: Path, index: int) -> Path:
        """Where component ``index`` is saved (``registry.load_model`` reads it back)."""
        return directory / f"component_{index}"

    def _save_extra(self, directory: Path) -> None:
        for i, c in enumerate(self.components):
            c.save(self.component_dir(directory, i))
