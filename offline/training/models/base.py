"""The common recommender interface and its persistence format.

Every model exposes the same three operations so the protocol, the tuner
and the online serving side can treat them interchangeably:

* ``fit(X)`` on a users x items float32 CSR matrix,
* ``score(user_rows, X)`` -> dense float32 scores for a batch of users,
* ``recommend(user_rows, X, n)`` -> top-n item indices and scores.

``recommend`` is implemented once here: it asks the subclass for dense
scores of a *chunk* of users (bounded memory), masks already-seen items and
selects the top n with ``argpartition`` -- no per-user Python loop.  Models
whose scores are dot products of user and item vectors (ALS) say so through
``factors``; they are ranked by ``implicit``'s fused multiply-and-select
instead, which never materialises the users x items block and skips seen
items inside the heap (3x faster at 125,000 x 25,000, and the publishing
step ranks every user).

A trained model is saved as a directory holding ``meta.json`` (class, name,
params) and ``arrays.npz`` (learned state) so a model version can be kept
and reloaded bit-for-bit (see :func:`offline.training.models.registry.load_model`).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

# Dense score blocks are kept below this many bytes.
_BLOCK_BYTES = 64 * 1024 * 1024

META_FILE = "meta.json"
ARRAYS_FILE = "arrays.npz"


def as_csr32(X: Any) -> sp.csr_matrix:
    """Coerce to float32 CSR with sorted indices (what every model expects)."""
    M: Any  # scipy has no type information, so neither has a sparse matrix
    if sp.issparse(X) and X.format == "csr" and X.dtype == np.float32:
        M = X
    else:
        M = sp.csr_matrix(X, dtype=np.float32)
    if not M.has_sorted_indices:
        M = M.copy()
        M.sort_indices()
    return M


def top_n(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the n largest entries per row, best first.

    Entries equal to -inf (masked) are reported as index -1 so callers can
    tell "no more candidates" from a real recommendation.  Ties are broken
    by the lower item index, which makes results deterministic.
    """
    n_rows, n_cols = scores.shape
    n = min(n, n_cols)
    if n <= 0:
        return np.empty((n_rows, 0), np.int64), np.empty((n_rows, 0), np.float32)
    if n < n_cols:
        part = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    else:
        part = np.broadcast_to(np.arange(n_cols), (n_rows, n_cols))
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -vals), axis=1)
    idx = np.take_along_axis(part, order, axis=1).astype(np.int64)
    vals = np.take_along_axis(vals, order, axis=1).astype(np.float32)
    idx[np.isneginf(vals)] = -1
    return idx, vals


def _factor_top_n(
    users: np.ndarray, items: np.ndarray, seen: sp.csr_matrix | None, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """``top_n(users @ items.T)`` with ``seen`` masked, by implicit's C++ top-k (all cores).

    Its filtered slots come back as -FLT_MAX with arbitrary indices: reported as -1 / -inf like
    ``top_n``. Ties inside the list are ordered by the lower item index, as ``top_n`` does."""
    from implicit.cpu.topk import topk

    idx, vals = topk(np.ascontiguousarray(items, dtype=np.float32), np.ascontiguousarray(users, dtype=np.float32), n,
                     filter_query_items=seen)
    idx, vals = idx.astype(np.int64), vals.astype(np.float32)
    empty = vals <= np.finfo(np.float32).min
    idx[empty], vals[empty] = -1, -np.inf
    order = np.lexsort((np.where(empty, np.iinfo(np.int64).max, idx), -vals), axis=1)
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(vals, order, axis=1)


class Recommender(ABC):
    """Base class: subclasses implement ``_fit``, ``score`` and state I/O."""

    #: registry key used in ``meta.json``; set by subclasses
    kind: ClassVar[str] = "base"
    #: Whether ``refresh_users`` solves a user as the fit did (a model fit elsewhere may not).
    refreshes_users: ClassVar[bool] = True

    def __init__(self, name: str | None = None, **params: Any) -> None:
        self.params: dict[str, Any] = dict(params)
        self.name: str = name or self.kind
        self.n_items: int | None = None

    # -- training -----------------------------------------------------------
    def fit(self, X: sp.spmatrix) -> Recommender:
        """Learn from a users x items interaction matrix; returns ``self``."""
        X = as_csr32(X)
        self.n_items = int(X.shape[1])
        self._fit(X)
        return self

    @abstractmethod
    def _fit(self, X: sp.csr_matrix) -> None: ...

    def refresh_users(self, user_rows: np.ndarray, X: sp.spmatrix) -> None:  # noqa: B027 - optional hook
        """Bring these users' own state up to their rows of ``X``, the item side unchanged.

        Why: the trainer's quality gate holds some entries of a sample of users out of the fit; when
        that sample is a small share of the data the gated model is published as it is (no second
        fit), and only the sampled users' state must then see their whole history. Models that keep
        no per-user state (they score from the user's row of ``X``) have nothing to do."""

    @abstractmethod
    def score(self, user_rows: np.ndarray, X: sp.csr_matrix) -> np.ndarray:
        """Dense float32 [len(user_rows) x n_items]; higher is better.

        ``X`` is the interaction matrix used as the users' history (usually
        the training matrix); ``user_rows`` index its rows.
        """

    # -- ranking ------------------------------------------------------------
    def factors(self, user_rows: np.ndarray, X: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray] | None:
        """(user vectors, item vectors) when ``score`` is their product; None otherwise."""
        return None

    def _checked(self, X: sp.spmatrix) -> sp.csr_matrix:
        if self.n_items is None:
            raise RuntimeError(f"{self.name}: recommend() called before fit()")
        X = as_csr32(X)
        if X.shape[1] != self.n_items:
            raise ValueError(f"X has {X.shape[1]} items, model was fitted on {self.n_items}")
        return X

    def _chunk_rows(self) -> int:
        return max(1, min(4096, _BLOCK_BYTES // (4 * max(1, self.n_items or 1))))

    def recommend(
        self,
        user_rows: np.ndarray,
        X: sp.spmatrix,
        n: int,
        exclude_seen: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-n items for each user row, best first.

        Returns ``(item_idx, scores)`` shaped [len(user_rows) x min(n, n_items)];
        ``item_idx`` is int64 and -1 where fewer than n unseen items exist.
        """
        X = self._checked(X)
        rows = np.asarray(user_rows, dtype=np.int64).ravel()
        width = min(n, X.shape[1])
        vectors = self.factors(rows, X) if width > 0 and rows.size else None
        if vectors is not None:
            return _factor_top_n(*vectors, X[rows] if exclude_seen else None, width)
        out_idx = np.full((rows.shape[0], width), -1, dtype=np.int64)
        out_val = np.full((rows.shape[0], width), -np.inf, dtype=np.float32)
        step = self._chunk_rows()
        for start in range(0, rows.shape[0], step):
            chunk = rows[start : start + step]
            s = np.array(self.score(chunk, X), dtype=np.float32, copy=True)
            if exclude_seen:
                seen = X[chunk]
                r, c = seen.nonzero()
                s[r, c] = -np.inf
            idx, val = top_n(s, width)
            out_idx[start : start + len(chunk)] = idx
            out_val[start : start + len(chunk)] = val
        return out_idx, out_val

    # -- persistence --------------------------------------------------------
    def _state(self) -> dict[str, np.ndarray]:
        """Arrays that fully describe the fitted model."""
        return {}

    def _set_state(self, arrays: dict[str, np.ndarray], directory: Path) -> None:  # noqa: B027 - optional hook
        """Restore from ``_state()`` output (``directory`` for nested models)."""

    def _save_extra(self, directory: Path) -> None:  # noqa: B027 - optional hook
        """Hook for composite models that save sub-models into subfolders."""

    def save(self, directory: str | Path) -> Path:
        """Write ``meta.json`` + ``arrays.npz`` into ``directory`` (created)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        meta = {"kind": self.kind, "name": self.name, "params": self.params, "n_items": self.n_items}
        (d / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
        arrays: dict[str, Any] = self._state()  # numpy's stub types **kwds as its own flags
        np.savez(d / ARRAYS_FILE, **arrays)
        self._save_extra(d)
        return d

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, params={self.params!r})"


#: A zero-argument callable returning an unfitted model (a class or a lambda), as the protocol
#: and the evaluation line-up take them: every seed gets a fresh instance.
ModelFactory = Callable[[], Recommender]
