"""Fold-in: score one user from their current interactions with a trained model, without retraining.

The math is here, beside the models, so the evaluation (offline.evaluation.fresh_protocols) and the
query processes run the very same code: a query process reaches it through the model runtime
(offline/serving.py) that the composition root (movieaugur/app.py) injects into the query service;
queries/ never imports offline/ (siblings), it only knows the port in queries/fresh.py.

* **ALS** — the user's factors are re-solved against the fixed item factors Y, one exact
  confidence-weighted least-squares step, as implicit's ``recalculate_user`` does:

      x_u = (YᵀY + λI + Σ_i (c_ui − 1)·y_i y_iᵀ)⁻¹ · Σ_{i: w_ui > 0} c_ui·y_i,     c_ui = α·w_ui

  over the user's items only, with YᵀY + λI precomputed once per model version (implicit scales the
  input by α, so its confidence of an observed item is α·w, and 1 for everything unobserved). A
  negative weight (a dislike, a low rating) adds confidence without preference (p_ui = 0), as
  implicit reads negative entries: it pushes the user's vector away from that item; its confidence
  is floored at 1 so that a weak dislike never lowers the confidence of "not watched".
  The model's input weighting (``bm25``/``tfidf``) is applied to the user's positive weights with
  the item statistics saved at training time.
* **EASE** — scores = w_u · B, the user's weights times the item-item matrix, over the user's rows
  of B only (a dislike subtracts its row: what co-occurs with a disliked item goes down).
* **Blend** — each component's scores standardised over the catalogue, then the weighted sum
  (models/blend.py), exactly as the trained blend ranks.

``save_serving_artifacts`` writes what fold-in needs beside a saved model version (the column →
item key order, the positives per item, the weighting statistics); ``load_fold_in`` reads a
version back. A version without them (saved before fold-in existed) cannot fold in, and the query
side then answers from the published lists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from threadpoolctl import ThreadpoolController

from offline.training.interaction_matrix import MAX_PAIR_WEIGHT
from offline.training.models import ALS, EASE, Blend, Popularity, Recommender, load_model, standardize

SERVING_FILE = "serving.npz"
_blas: ThreadpoolController | None = None


def _one_blas_thread() -> Any:
    """Scope BLAS to one thread: one user's solve is a few 128 × 128 products, and OpenBLAS's
    threads cost more than they give at that size (tens of ms on a loaded 2-core box, ~1 ms
    without them). ~60 µs per use; the controller finds the libraries once."""
    global _blas
    if _blas is None:
        _blas = ThreadpoolController()
    return _blas.limit(limits=1, user_api="blas")


class FoldInUnavailable(RuntimeError):
    """This saved model version cannot fold users in (missing or unreadable artifacts, or a kind
    of model fold-in does not know); the message says which."""


# -- artifacts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemStats:
    """What a saved version keeps about its training matrix: enough to weight a new user's row as
    the model's input weighting did, and to tell which items the model has seen positives for."""

    positives: np.ndarray  # int64 per column: users with a positive weight
    n_users: int
    avg_length: float  # mean summed weight per user

    @classmethod
    def of(cls, X: sp.spmatrix) -> ItemStats:
        X = sp.csr_matrix(X)
        positives = np.bincount(X.indices[X.data > 0], minlength=X.shape[1]).astype(np.int64)
        lengths = np.asarray(X.sum(axis=1)).ravel()
        avg = float(lengths.mean()) if lengths.size and lengths.mean() > 0 else 1.0
        return cls(positives, int(X.shape[0]), avg)


def save_serving_artifacts(directory: Path, items: Sequence[str], X: sp.spmatrix) -> Path:
    """Beside a saved model: item keys in column order and the training matrix's statistics."""
    stats = ItemStats.of(X)
    path = Path(directory) / SERVING_FILE
    np.savez(
        path,
        items=np.asarray(list(items), dtype=np.str_),
        positives=stats.positives,
        n_users=np.int64(stats.n_users),
        avg_length=np.float64(stats.avg_length),
    )
    return path


def load_fold_in(directory: Path) -> FoldInModel:
    """A saved version ready to fold users in; FoldInUnavailable when it cannot."""
    d = Path(directory)
    if not (d / SERVING_FILE).is_file():
        raise FoldInUnavailable(f"{d} has no {SERVING_FILE} (missing, or saved before fold-in existed)")
    try:
        model = load_model(d)
        with np.load(d / SERVING_FILE, allow_pickle=False) as z:
            keys = [str(k) for k in z["items"]]
            stats = ItemStats(z["positives"].astype(np.int64), int(z["n_users"]), float(z["avg_length"]))
    except (OSError, ValueError, KeyError) as error:
        raise FoldInUnavailable(f"{d}: unreadable model artifacts ({error!r})") from error
    return FoldInModel.from_model(model, keys, stats)


# -- the per-kind math --------------------------------------------------------------------------


class _Part(Protocol):
    def scores(self, idx: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Float32 scores over every column for one user given (column, weight) pairs."""
        ...


class ALSFoldIn:
    """Re-solve one user's factors against fixed item factors (see the module docstring)."""

    def __init__(self, model: ALS, stats: ItemStats) -> None:
        p = model.params
        self.Y = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        self.regularization = float(p["regularization"])
        self.alpha = float(p["alpha"])
        self.weighting = str(p.get("weighting", "none"))
        self.k1, self.b = float(p.get("bm25_k1", 100.0)), float(p.get("bm25_b", 0.8))
        Y64 = self.Y.astype(np.float64)
        self.A0 = Y64.T @ Y64 + self.regularization * np.eye(self.Y.shape[1])  # YᵀY + λI, once per version
        df = stats.positives.astype(np.float64)
        self.idf = np.maximum(np.log(max(stats.n_users, 1)) - np.log1p(df), 1e-3)
        self.avg_length = stats.avg_length

    def _weighted(self, idx: np.ndarray, w: np.ndarray) -> np.ndarray:
        """The model's input weighting (models/als.py weight_matrix) on the positive entries."""
        if self.weighting == "none":
            return w
        out = w.copy()
        pos = w > 0
        if self.weighting == "bm25":
            norm = (1.0 - self.b) + self.b * float(w[pos].sum()) / self.avg_length
            out[pos] = w[pos] * (self.k1 + 1.0) / (self.k1 * norm + w[pos]) * self.idf[idx[pos]]
        else:
            out[pos] = np.sqrt(w[pos]) * self.idf[idx[pos]]
        return out

    def user_vector(self, idx: np.ndarray, w: np.ndarray) -> np.ndarray:
        """x_u (float64); zeros when the user has no positive entry (implicit does the same)."""
        c = self.alpha * self._weighted(idx, np.asarray(w, dtype=np.float64))
        positive = c > 0
        if not positive.any():
            return np.zeros(self.Y.shape[1])
        confidence = np.where(positive, c, np.maximum(-c, 1.0))
        Yu = self.Y[idx]
        # the user's rank-k update in float32 (one sgemm), the solve in float64 (LAPACK posv: Cholesky)
        A = self.A0 + ((Yu.T * (confidence - 1.0).astype(np.float32)) @ Yu).astype(np.float64)
        b = Yu[positive].T.astype(np.float64) @ c[positive]
        _, x, info = scipy.linalg.lapack.dposv(A, b, lower=False, overwrite_a=True, overwrite_b=False)
        if info != 0:  # weak positives against strong dislikes: A may lose definiteness
            return np.asarray(np.linalg.lstsq(self.A0 + (Yu.T.astype(np.float64) * (confidence - 1.0)) @ Yu, b, rcond=None)[0])
        return np.asarray(x)

    def scores(self, idx: np.ndarray, w: np.ndarray) -> np.ndarray:
        return self.Y @ self.user_vector(idx, w).astype(np.float32)


class EASEFoldIn:
    """Scores = w_u · B over the user's rows of B (items outside training score 0)."""

    def __init__(self, model: EASE, n_items: int) -> None:
        self.B = np.ascontiguousarray(model.B, dtype=np.float32)
        self.active = model.active.astype(np.int64)
        self.n_items = n_items
        self.row_of = np.full(n_items, -1, dtype=np.int64)
        self.row_of[self.active] = np.arange(self.active.shape[0])

    def scores(self, idx: np.ndarray, w: np.ndarray) -> np.ndarray:
        out = np.zeros(self.n_items, dtype=np.float32)
        rows = self.row_of[idx]
        known = rows >= 0
        if known.any():
            # a 1 × a sparse row times dense B reads only the user's rows, without copying them
            user = sp.csr_matrix(
                (np.asarray(w, dtype=np.float32)[known], (np.zeros(int(known.sum()), dtype=np.int64), rows[known])),
                shape=(1, self.B.shape[0]),
            )
            out[self.active] = np.asarray(user @ self.B).ravel()
        return out


class PopularityFoldIn:
    def __init__(self, model: Popularity) -> None:
        self.counts = model.counts.astype(np.float32)

    def scores(self, idx: np.ndarray, w: np.ndarray) -> np.ndarray:
        return self.counts.copy()


def _parts(model: Recommender, stats: ItemStats, n_items: int) -> list[tuple[float, _Part]]:
    if isinstance(model, Blend):
        parts: list[tuple[float, _Part]] = []
        for weight, component in zip(model.params["weights"], model.components, strict=True):
            [(_, part)] = _parts(component, stats, n_items)
            parts.append((float(weight), part))
        return parts
    if isinstance(model, ALS):
        return [(1.0, ALSFoldIn(model, stats))]
    if isinstance(model, EASE):
        return [(1.0, EASEFoldIn(model, n_items))]
    if isinstance(model, Popularity):
        return [(1.0, PopularityFoldIn(model))]
    raise FoldInUnavailable(f"no fold-in for model kind {model.kind!r}")


# -- one model version, ready to fold users in ---------------------------------------------------


@dataclass
class FoldInModel:
    """A saved model version in the form the fold-in needs: columns ↔ item keys, the parts."""

    kind: str
    keys: list[str]
    stats: ItemStats
    parts: list[tuple[float, _Part]]
    index: dict[str, int] = field(default_factory=dict)
    _type_masks: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _warm: np.ndarray | None = field(default=None, repr=False)
    _cold_columns: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def from_model(cls, model: Recommender, keys: Sequence[str], stats: ItemStats | sp.spmatrix) -> FoldInModel:
        """From a fitted model, its column keys, and its training matrix (or that matrix's stats)."""
        if not isinstance(stats, ItemStats):
            stats = ItemStats.of(stats)
        keys = list(keys)
        n_items = model.n_items if model.n_items is not None else len(keys)
        if n_items != len(keys) or stats.positives.shape[0] != n_items:
            raise FoldInUnavailable(f"{len(keys)} item keys and {stats.positives.shape[0]} item statistics "
                                    f"for a model of {n_items} items")
        return cls(model.kind, keys, stats, _parts(model, stats, n_items), {k: i for i, k in enumerate(keys)})

    @property
    def n_items(self) -> int:
        return len(self.keys)

    @property
    def warm(self) -> np.ndarray:
        """Columns the model has seen at least one positive for (boolean mask)."""
        if self._warm is None:
            self._warm = self.stats.positives > 0
        return self._warm

    @property
    def cold_columns(self) -> np.ndarray:
        """Columns without a positive in training (usually few)."""
        if self._cold_columns is None:
            self._cold_columns = np.flatnonzero(~self.warm)
        return self._cold_columns

    def type_mask(self, item_type: str) -> np.ndarray:
        mask = self._type_masks.get(item_type)
        if mask is None:
            prefix = f"{item_type}:"
            mask = np.fromiter((k.startswith(prefix) for k in self.keys), dtype=bool, count=len(self.keys))
            self._type_masks[item_type] = mask
        return mask

    def user_input(self, weights: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """(columns, weights) of the user's items the model knows; weights capped as in training."""
        pairs = [(self.index[k], w) for k, w in weights.items() if w and k in self.index]
        if not pairs:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        idx = np.fromiter((p[0] for p in pairs), dtype=np.int64, count=len(pairs))
        w = np.fromiter((p[1] for p in pairs), dtype=np.float64, count=len(pairs))
        return idx, np.clip(w, -MAX_PAIR_WEIGHT, MAX_PAIR_WEIGHT)

    def score(self, idx: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Float32 scores over every column for one user (a blend: standardised, weighted); a new
        array the caller may change."""
        with _one_blas_thread():
            if len(self.parts) == 1:
                return self.parts[0][1].scores(idx, w)
            out = np.zeros(self.n_items, dtype=np.float32)
            for weight, part in self.parts:
                if weight:
                    out += np.float32(weight) * standardize(part.scores(idx, w)[None, :])[0]
            return out


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k best finite scores, best first (ties by index): argpartition, then a sort
    of the k only — brute force over float32, a few ms for 100k items."""
    n = scores.shape[0]
    k = min(k, n)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(-scores, k - 1)[:k] if k < n else np.arange(n)
    order = np.lexsort((part, -scores[part]))
    best = part[order]
    return best[np.isfinite(scores[best])].astype(np.int64)
