"""Implicit-feedback ALS (Hu, Koren & Volinsky) via ``implicit``'s CPU solver.

Why a wrapper: the project needs the common interface, deterministic
seeding, saving of factors without pickling ``implicit`` objects, and a
guard against OpenBLAS oversubscription -- ``implicit`` runs its own thread
pool and is 10x slower when BLAS also spawns threads, so fitting runs under
``threadpool_limits(1, "blas")`` (the limit is scoped, EASE keeps its BLAS
threads).

Optional input weighting (applied to the matrix ALS sees, never to what is
excluded from ranking): ``"bm25"`` down-weights popular items and very
active users, ``"tfidf"`` does the idf part only.  ``alpha`` then scales the
confidence as in ``implicit`` (C = 1 + alpha * weight).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from offline.training.models.base import Recommender

WEIGHTINGS = ("none", "bm25", "tfidf")


def weight_matrix(X: sp.csr_matrix, weighting: str, k1: float = 100.0, b: float = 0.8) -> sp.csr_matrix:
    """Re-weight a users x items matrix (users are "documents", items "terms").

    Written out here rather than calling ``implicit.nearest_neighbours``'s
    helpers so the idf is clipped at a small positive floor (an item liked by
    every user would otherwise get a negative weight) and the result stays
    float32 CSR.
    """
    if weighting == "none":
        return X
    if weighting not in WEIGHTINGS:
        raise ValueError(f"unknown weighting {weighting!r}; expected one of {WEIGHTINGS}")
    C = X.tocoo()
    n_users = X.shape[0]
    df = np.bincount(C.col, minlength=X.shape[1]).astype(np.float64)
    idf = np.maximum(np.log(max(n_users, 1)) - np.log1p(df), 1e-3)
    data = C.data.astype(np.float64)
    if weighting == "bm25":
        length = np.asarray(X.sum(axis=1)).ravel().astype(np.float64)
        avg = length.mean() if length.size and length.mean() > 0 else 1.0
        norm = (1.0 - b) + b * length / avg
        data = data * (k1 + 1.0) / (k1 * norm[C.row] + data) * idf[C.col]
    else:
        data = np.sqrt(data) * idf[C.col]
    W = sp.csr_matrix((data.astype(np.float32), (C.row, C.col)), shape=X.shape)
    W.sort_indices()
    return W


class ALS(Recommender):
    """Matrix factorisation with confidence-weighted least squares."""

    kind = "als"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 10.0,
        alpha: float = 2.0,
        iterations: int = 15,
        weighting: str = "none",
        bm25_k1: float = 100.0,
        bm25_b: float = 0.8,
        random_state: int = 0,
        num_threads: int = 0,
        name: str | None = None,
    ) -> None:
        if weighting not in WEIGHTINGS:
            raise ValueError(f"unknown weighting {weighting!r}")
        super().__init__(
            name=name,
            factors=int(factors),
            regularization=float(regularization),
            alpha=float(alpha),
            iterations=int(iterations),
            weighting=weighting,
            bm25_k1=float(bm25_k1),
            bm25_b=float(bm25_b),
            random_state=int(random_state),
            num_threads=int(num_threads),
        )
        self.user_factors: np.ndarray = np.zeros((0, 0), dtype=np.float32)
        self.item_factors: np.ndarray = np.zeros((0, 0), dtype=np.float32)

    def _new_model(self):
        from implicit.cpu.als import AlternatingLeastSquares

        p = self.params
        return AlternatingLeastSquares(
            factors=p["factors"],
            regularization=p["regularization"],
            alpha=p["alpha"],
            iterations=p["iterations"],
            random_state=p["random_state"],
            num_threads=p["num_threads"],
            calculate_training_loss=False,
        )

    def _weighted(self, X: sp.csr_matrix) -> sp.csr_matrix:
        p = self.params
        return weight_matrix(X, p["weighting"], p["bm25_k1"], p["bm25_b"])

    def _fit(self, X: sp.csr_matrix) -> None:
        with threadpool_limits(limits=1, user_api="blas"):
            model = self._new_model()
            model.fit(self._weighted(X), show_progress=False)
        self.user_factors = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.asarray(model.item_factors, dtype=np.float32)

    def user_vectors(self, user_rows: np.ndarray, X: sp.csr_matrix) -> np.ndarray:
        """Fitted factors; rows beyond the fitted users are solved from X.

        The fold-in uses ``implicit``'s ``recalculate_user`` (one exact
        least-squares step with item factors fixed), so new users can be
        served by a stored model without retraining.
        """
        rows = np.asarray(user_rows, dtype=np.int64).ravel()
        known = rows < self.user_factors.shape[0]
        out = np.zeros((rows.shape[0], self.item_factors.shape[1]), dtype=np.float32)
        out[known] = self.user_factors[rows[known]]
        if not known.all():
            with threadpool_limits(limits=1, user_api="blas"):
                model = self._new_model()
                model.item_factors = self.item_factors
                model.user_factors = self.user_factors
                hist = self._weighted(X)[rows[~known]]
                out[~known] = model.recalculate_user(np.arange(hist.shape[0]), hist)
        return out

    def refresh_users(self, user_rows: np.ndarray, X: sp.spmatrix) -> None:
        """Re-solve these users' factors from their rows of X against the fixed item factors (the
        same exact least-squares step as `user_vectors` uses for users beyond the fit)."""
        rows = np.asarray(user_rows, dtype=np.int64).ravel()
        if rows.size == 0:
            return
        with threadpool_limits(limits=1, user_api="blas"):
            model = self._new_model()
            model.item_factors = self.item_factors
            model.user_factors = self.user_factors
            history = self._weighted(sp.csr_matrix(X, dtype=np.float32))[rows]
            self.user_factors[rows] = model.recalculate_user(np.arange(rows.shape[0]), history)

    def score(self, user_rows: np.ndarray, X: sp.csr_matrix) -> np.ndarray:
        return self.user_vectors(user_rows, X) @ self.item_factors.T

    def factors(self, user_rows: np.ndarray, X: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        return self.user_vectors(user_rows, X), self.item_factors

    def _state(self) -> dict[str, np.ndarray]:
        return {"user_factors": self.user_factors, "item_factors": self.item_factors}

    def _set_state(self, arrays: dict[str, np.ndarray], directory: Path) -> None:
        self.user_factors = arrays["user_factors"].astype(np.float32)
        self.item_factors = arrays["item_factors"].astype(np.float32)
