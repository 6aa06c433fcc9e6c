"""EASE: closed-form linear item-item autoencoder (Steck, 2019).

B = I - P / diag(P) with P = (XᵀX + Λ)⁻¹ and diag(B) = 0.  With
Λ = λI this is plain EASE.  The optional ``dropout`` p adds the
item-frequency-aware penalty of EDLAE (Steck, 2020):
Λ = λI + p/(1-p) · diag(XᵀX), which regularises popular items more and
stops the model from leaning on them -- on MovieLens this is what lifts
EASE's NDCG most cheaply.

Only items that occur in training are inverted (a never-seen item has a
zero row/column in XᵀX, hence a zero row/column in B), which keeps the
O(n³) inversion as small as possible.  The dense n x n matrix is the hard
limit: we refuse above ``max_items`` unless the caller raises it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from offline.training.models.base import Recommender

DEFAULT_MAX_ITEMS = 30_000


def ease_weights(G: np.ndarray, lam: float, dropout: float = 0.0) -> np.ndarray:
    """Item-item weights B from a dense Gram matrix ``G = XᵀX`` (float64).

    Uses a Cholesky inverse (potrf/potri), about twice as fast as a general
    LU inverse for this symmetric positive-definite system.
    """
    if not 0.0 <= dropout < 1.0:
        raise ValueError("dropout must be in [0, 1)")
    A = np.array(G, dtype=np.float64, copy=True)
    d = np.diag(A).copy()
    A[np.diag_indices_from(A)] += lam + (dropout / (1.0 - dropout)) * d
    c, info = scipy.linalg.lapack.dpotrf(A, lower=False, overwrite_a=True, clean=False)
    if info != 0:
        raise np.linalg.LinAlgError(f"Cholesky failed (info={info}); increase lambda")
    P, info = scipy.linalg.lapack.dpotri(c, lower=False, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"inverse failed (info={info})")
    P = np.triu(P) + np.triu(P, 1).T  # potri fills only the upper triangle
    B = P / (-np.diag(P))[None, :]
    B[np.diag_indices_from(B)] = 0.0
    return B


class EASE(Recommender):
    """Closed-form EASE / EDLAE over the items seen in training."""

    kind = "ease"

    def __init__(
        self,
        lam: float = 500.0,
        dropout: float = 0.0,
        max_items: int = DEFAULT_MAX_ITEMS,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name, lam=float(lam), dropout=float(dropout), max_items=int(max_items))
        self.active: np.ndarray = np.zeros(0, dtype=np.int64)
        self.B: np.ndarray = np.zeros((0, 0), dtype=np.float32)

    @staticmethod
    def memory_bytes(n_items: int) -> int:
        """Peak bytes of a fit on ``n_items`` items (two float64 n x n arrays)."""
        return 2 * 8 * n_items * n_items

    def _fit(self, X: sp.csr_matrix) -> None:
        active = np.flatnonzero(np.diff(X.tocsc().indptr) > 0)
        n = active.shape[0]
        if n > self.params["max_items"]:
            raise MemoryError(
                f"EASE on {n} items needs ~{self.memory_bytes(n) / 2**30:.1f} GiB; "
                f"refusing above max_items={self.params['max_items']} (raise it explicitly)"
            )
        if n > 20_000:
            warnings.warn(f"EASE on {n} items: dense {n}x{n} inversion, slow and memory-hungry", stacklevel=3)
        Xa = X[:, active]
        G = (Xa.T @ Xa).toarray().astype(np.float64)
        self.active = active.astype(np.int64)
        self.B = ease_weights(G, self.params["lam"], self.params["dropout"]).astype(np.float32)

    def score(self, user_rows: np.ndarray, X: sp.csr_matrix) -> np.ndarray:
        rows = np.asarray(user_rows, dtype=np.int64).ravel()
        assert self.n_items is not None
        out = np.zeros((rows.shape[0], self.n_items), dtype=np.float32)
        if self.active.size:
            hist = X[rows][:, self.active]
            out[:, self.active] = np.asarray(hist @ self.B, dtype=np.float32)
        return out

    def _state(self) -> dict[str, np.ndarray]:
        return {"active": self.active, "B": self.B}

    def _set_state(self, arrays: dict[str, np.ndarray], directory: Path) -> None:
        self.active = arrays["active"].astype(np.int64)
        self.B = arrays["B"].astype(np.float32)
