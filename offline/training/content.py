"""The content model: item vectors from catalog metadata, for items nobody has interacted with yet.

An item's vector joins one block per metadata field, each a TF-IDF vector (scikit-learn's
TfidfVectorizer) L2-normalised on its own and scaled by the field's weight, then the whole row is
L2-normalised, so the cosine of two items is the weighted mean of their per-field cosines:

| field | tokens | weight |
|---|---|---|
| categories | each category, as a whole label (case-folded) | 1.0 |
| keywords | each keyword, as a label | 0.8 |
| creators | each creator, as a label | 0.6 |
| text | words of title and description (English stop words out, sublinear tf) | 0.5 |
| year | 5-year and decade buckets of `release_date` | 0.3 |

IDF makes a rare category or keyword count more than "Drama". A field nobody fills is left out.
The item type is not a feature: the routes filter by type instead.

``ContentIndex`` keeps every catalogued item's vector by key. New or changed items are transformed
with the fitted vectorizers and appended at once (words and labels the vectorizers have not seen
count for nothing until the next full fit); the owner refits when many rows were added since, or
soon after a label it does not know arrives (see offline/serving.py). All similarities are cosines
in [0, 1].
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

FIELD_WEIGHTS: dict[str, float] = {"categories": 1.0, "keywords": 0.8, "creators": 0.6, "text": 0.5, "year": 0.3}
_YEAR = re.compile(r"(\d{4})")


def _labels(values: Any) -> list[str]:
    if not values:
        return []
    return [str(v).strip().casefold() for v in values if str(v).strip()]


def _year_tokens(release_date: Any) -> list[str]:
    match = _YEAR.search(str(release_date or ""))
    if not match:
        return []
    year = int(match.group(1))
    return [f"y{year // 5 * 5}", f"d{year // 10 * 10}"]


def field_tokens(doc: Mapping[str, Any], name: str) -> list[str] | str:
    """What one field of a catalog document contributes (a label list, or text for `text`)."""
    if name == "text":
        return " ".join(str(doc.get(k) or "") for k in ("title", "description")).strip()
    if name == "year":
        return _year_tokens(doc.get("release_date"))
    return _labels(doc.get(name))


def _tokens(tokens: list[str]) -> list[str]:
    """The analyzer of label fields: the labels are already the tokens."""
    return tokens


class ContentModel:
    """Fitted per-field vectorizers: catalog documents → L2-normalised sparse rows."""

    def __init__(self, vectorizers: dict[str, TfidfVectorizer], weights: Mapping[str, float]) -> None:
        self.vectorizers = vectorizers
        self.weights = dict(weights)

    @classmethod
    def fit(cls, docs: Sequence[Mapping[str, Any]], weights: Mapping[str, float] | None = None) -> ContentModel:
        weights = dict(FIELD_WEIGHTS if weights is None else weights)
        vectorizers: dict[str, TfidfVectorizer] = {}
        for name, weight in weights.items():
            if weight <= 0:
                continue
            values = [field_tokens(doc, name) for doc in docs]
            if not any(values):
                continue
            if name == "text":
                vec = TfidfVectorizer(stop_words="english", sublinear_tf=True, strip_accents="unicode",
                                      max_features=200_000, dtype=np.float32)
            else:
                vec = TfidfVectorizer(analyzer=_tokens, dtype=np.float32)
            try:
                vec.fit(values)
            except ValueError:  # only stop words, say: nothing to learn from this field
                continue
            vectorizers[name] = vec
        return cls(vectorizers, weights)

    @property
    def dimensions(self) -> int:
        return sum(len(v.vocabulary_) for v in self.vectorizers.values())

    def unknown_labels(self, docs: Sequence[Mapping[str, Any]]) -> int:
        """Labels (categories, keywords, creators, years) of these documents that the fitted
        vectorizers do not know: they count for nothing until the next fit."""
        unknown = 0
        for name, vec in self.vectorizers.items():
            if name == "text":
                continue
            vocabulary = vec.vocabulary_
            unknown += sum(1 for doc in docs for token in field_tokens(doc, name) if token not in vocabulary)
        for name, weight in self.weights.items():  # a field nobody filled at fit time
            if weight > 0 and name != "text" and name not in self.vectorizers:
                unknown += sum(len(field_tokens(doc, name)) for doc in docs)
        return unknown

    def transform(self, docs: Sequence[Mapping[str, Any]]) -> sp.csr_matrix:
        blocks = []
        for name, vec in self.vectorizers.items():
            block = vec.transform([field_tokens(doc, name) for doc in docs])
            blocks.append(block * np.float32(np.sqrt(self.weights[name])))
        if not blocks:
            return sp.csr_matrix((len(docs), 0), dtype=np.float32)
        out = normalize(sp.hstack(blocks, format="csr", dtype=np.float32), norm="l2", copy=False)
        return sp.csr_matrix(out, dtype=np.float32)


_SERIALS = itertools.count(1)


class ContentIndex:
    """Every catalogued item's content vector by "type:id" key.

    Rows are append-only: a changed item gets a new row and its old one is marked dead, so an update
    costs one transform, never a refit. ``generation`` changes with every update (callers cache
    anything derived from the rows by it); ``serial`` tells indexes of one process apart (a new
    index starts at a generation an older one had)."""

    def __init__(self, model: ContentModel) -> None:
        self.serial = next(_SERIALS)
        self.model = model
        self.keys: list[str] = []
        self.row: dict[str, int] = {}
        self.fitted_rows = 0
        self.generation = 0
        self.unknown_tokens = 0  # labels added since the fit that the vectorizers do not know
        self._blocks: list[sp.csr_matrix] = []
        self._V: sp.csr_matrix = sp.csr_matrix((0, model.dimensions), dtype=np.float32)
        self._alive = np.zeros(0, dtype=bool)
        self._types = np.zeros(0, dtype=np.str_)
        self._type_masks: dict[str, np.ndarray] = {}

    @classmethod
    def build(cls, docs: Mapping[str, Mapping[str, Any]], weights: Mapping[str, float] | None = None) -> ContentIndex:
        """Fit the vectorizers on every document and index them all."""
        index = cls(ContentModel.fit(list(docs.values()), weights))
        index.upsert(docs)
        index.fitted_rows = len(index.keys)
        index.unknown_tokens = 0
        return index

    def __len__(self) -> int:
        return len(self.row)

    def __contains__(self, key: object) -> bool:
        return key in self.row

    def upsert(self, docs: Mapping[str, Mapping[str, Any]]) -> None:
        """Add or replace items (new rows; the rows they replace are dead from now on)."""
        if not docs:
            return
        keys = list(docs)
        rows = self.model.transform([docs[k] for k in keys])
        self.unknown_tokens += self.model.unknown_labels([docs[k] for k in keys])
        start = len(self.keys)
        dead = [self.row[k] for k in keys if k in self.row]
        self.keys.extend(keys)
        for offset, key in enumerate(keys):
            self.row[key] = start + offset
        self._blocks.append(rows)
        alive = np.ones(len(keys), dtype=bool)
        for offset in range(len(keys) - 1):  # the same key twice in one batch: the last one lives
            if self.row[keys[offset]] != start + offset:
                alive[offset] = False
        self._alive = np.concatenate([self._alive, alive])
        self._alive[dead] = False
        self._types = np.concatenate([self._types, np.asarray([k.partition(":")[0] for k in keys], dtype=np.str_)])
        self._type_masks.clear()
        self.generation += 1

    @property
    def added_since_fit(self) -> int:
        return len(self.keys) - self.fitted_rows

    @property
    def V(self) -> sp.csr_matrix:
        """All rows (dead ones included, masked by ``alive``), float32 CSR."""
        if self._blocks:
            self._V = sp.csr_matrix(sp.vstack([self._V, *self._blocks], format="csr"), dtype=np.float32)
            self._blocks = []
        return self._V

    @property
    def alive(self) -> np.ndarray:
        return self._alive

    def type_mask(self, item_type: str) -> np.ndarray:
        mask = self._type_masks.get(item_type)
        if mask is None:
            mask = self._types == item_type
            self._type_masks[item_type] = mask
        return mask

    def rows_of(self, keys: Sequence[str]) -> np.ndarray:
        """Row per key, -1 where the key is not catalogued."""
        return np.fromiter((self.row.get(k, -1) for k in keys), dtype=np.int64, count=len(keys))

    # -- similarity -------------------------------------------------------------------------------

    def similarity_sum(self, rows: np.ndarray, strengths: np.ndarray) -> np.ndarray:
        """Per row of the index: min(1, Σ_j strength_j × cosine(row, rows_j)) (dense float32).

        Linear in the rows, so it is one mat-vec whatever their number: the rows are unit vectors,
        hence Σ_j s_j·cos(x, r_j) = x · Σ_j s_j·r_j."""
        V = self.V
        if rows.size == 0 or V.shape[0] == 0:
            return np.zeros(V.shape[0], dtype=np.float32)
        target = self.weighted_sum(rows, np.asarray(strengths, dtype=np.float32))
        return np.minimum(np.asarray(V @ target, dtype=np.float32), np.float32(1.0))

    def weighted_sum(self, rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Σ_j weights_j × V[rows_j] as a dense float32 feature vector, straight from the CSR arrays
        (no sparse matrix is built: this is on the request path)."""
        V = self.V
        starts, stops = V.indptr[rows], V.indptr[rows + 1]
        lengths = stops - starts
        if lengths.sum() == 0:
            return np.zeros(V.shape[1], dtype=np.float32)
        offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
        values = V.data[offsets] * np.repeat(np.asarray(weights, dtype=np.float32), lengths)
        return np.bincount(V.indices[offsets], weights=values, minlength=V.shape[1]).astype(np.float32)

    def similar(self, key: str, n: int, item_type: str | None = None, exclude: Collection[str] = ()) -> list[tuple[str, float]]:
        """The n most similar other items (positive cosine only), most similar first."""
        row = self.row.get(key)
        if row is None:
            return []
        V = self.V
        scores = np.asarray(V @ V[row].toarray().ravel(), dtype=np.float32)
        scores[~self._alive] = 0.0
        scores[row] = 0.0
        if item_type is not None:
            scores[~self.type_mask(item_type)] = 0.0
        return self.top(scores, n, exclude)

    def profile(self, weights: Mapping[str, float]) -> np.ndarray | None:
        """The user's taste in content space: the weighted sum of the rows of their positive items
        (capped weights), L2-normalised, dense; None when none of them is catalogued."""
        pairs = [(self.row[k], min(w, 100.0)) for k, w in weights.items() if w > 0 and k in self.row]
        if not pairs:
            return None
        rows = np.fromiter((p[0] for p in pairs), dtype=np.int64, count=len(pairs))
        w = np.fromiter((p[1] for p in pairs), dtype=np.float32, count=len(pairs))
        vec = self.weighted_sum(rows, w)
        norm = float(np.linalg.norm(vec))
        return vec / np.float32(norm) if norm > 0 else None

    def affinity(self, profile: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Cosine of the profile with every row (or with ``rows``): one mat-vec over all rows."""
        scores = np.asarray(self.V @ profile, dtype=np.float32)
        return scores if rows is None else scores[rows]

    def top(self, scores: np.ndarray, n: int, exclude: Collection[str] = (), rows: np.ndarray | None = None) -> list[tuple[str, float]]:
        """(key, score) of the best positive scores; ``rows`` maps positions of ``scores`` to rows."""
        out: list[tuple[str, float]] = []
        positive = np.flatnonzero(scores > 0)
        if positive.size == 0:
            return out
        wanted = 2 * n + len(exclude) + 16  # enough to survive the filters below, almost always
        head = _ranked(positive, scores, wanted)
        self._take(head, scores, n, exclude, rows, out)
        if len(out) < n and head.size < positive.size:  # the filters ate the head: rank the rest too
            rest = np.setdiff1d(positive, head)
            self._take(_ranked(rest, scores, rest.size), scores, n, exclude, rows, out)
        return out

    def _take(self, order: np.ndarray, scores: np.ndarray, n: int, exclude: Collection[str],
              rows: np.ndarray | None, out: list[tuple[str, float]]) -> None:
        for position in order:
            if len(out) >= n:
                return
            row = int(position if rows is None else rows[position])
            if not self._alive[row]:
                continue
            key = self.keys[row]
            if key not in exclude:
                out.append((key, float(scores[position])))


def _ranked(positions: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """The k best of ``positions`` by score, best first (ties by position): argpartition first."""
    if positions.size > k:
        positions = positions[np.argpartition(-scores[positions], k - 1)[:k]]
    return positions[np.lexsort((positions, -scores[positions]))]
