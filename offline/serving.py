"""The model runtime of a query process: fold-in with the current model version, the content index
over the catalog, and the dislike rule. It implements the port queries/fresh.py declares
(`ModelRuntime`); movieaugur/app.py builds one per query process and injects it.

Model versions. The version that answers is the one `projections.recommendations.current` names
(the read side passes it in); its artifacts are read from `settings.models_dir/<name>/<version>`
(offline/training/fold_in.py: `load_fold_in`) in a worker thread, once, and kept until the name's
current version changes. A request waits at most LOAD_WAIT_SECONDS for a load; meanwhile, and
whenever a version cannot be loaded (no artifacts on this machine, unreadable files, a version
saved before fold-in existed), the runtime answers None and the read side serves the published
lists — never an error. A failed load is retried after RETRY_SECONDS (artifacts may still be
arriving on a shared volume).

The content index. Fed by the query process's in-memory catalog (movieaugur/local_views.py calls
`catalog_changed` with every batch of catalog documents): built in a worker thread on start and
whenever more than max(REFIT_MIN_ROWS, REFIT_SHARE × indexed) rows were added since the last fit;
between fits, new and changed items are transformed with the fitted vectorizers and added at the
next request that needs the index, so an item is similar to others the moment it is catalogued. A
label the vectorizers do not know yet (a new category, keyword or creator) counts from the next
fit, which starts at most REFIT_UNKNOWN_LABELS_AFTER_SECONDS after the previous one.

Dislikes. An item whose summed weight is negative for the user (a dislike, a low rating) is a
dislike of strength s = min(1, |weight| / |dislike weight|). Besides entering the fold-in as a
negative entry (fold_in.py), every candidate's score is lowered by
`dislike_penalty × min(1, Σ over dislikes of s × content cosine(candidate, disliked))`; for the
model's ranking the scores are first standardised per user (z-scores), for cold items it applies to
the content affinity itself. The MAX_DISLIKES strongest dislikes count. (A sum, not a maximum: it
is linear, so all dislikes cost one sparse mat-vec over the catalog.)

Answers are remembered. A fold-in ranking and a cold-item ranking are pure functions of the model
version, the content index's generation, the user's weights and the request's filters, so the last
ANSWER_PAIRS (key, score) pairs of each are kept under exactly those inputs (the weights and
exclusions by a digest, so a heavy user's history does not sit in the keys): a user who asks again without
having interacted since (the common case: a page reload, the next page of a carousel) costs no
solve, no scoring and no thread hop. Nothing is invalidated by time: a new interaction changes the
weights, a new version or catalog change changes the key, and the caches are emptied when a model
is loaded or the index rebuilt (the keys name the version, not the object).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Collection, Hashable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from cachetools import LRUCache

from kernel.settings import Settings
from offline.training.content import ContentIndex
from offline.training.fold_in import FoldInModel, FoldInUnavailable, load_fold_in, top_k
from offline.training.models import standardize

log = logging.getLogger(__name__)

LOAD_WAIT_SECONDS = 0.5
RETRY_SECONDS = 30.0
REFIT_MIN_ROWS = 256
REFIT_SHARE = 0.25
REFIT_UNKNOWN_LABELS_AFTER_SECONDS = 10.0
MAX_DISLIKES = 20
#: Remembered (key, score) pairs per kind (fold-in, cold items): an answer is at most 64 × limit.
ANSWER_PAIRS = 500_000

Scored = list[tuple[str, float]]


class _Loaded:
    """One model name's current version in this process (model None: it could not be loaded)."""

    def __init__(self, version: str, model: FoldInModel | None) -> None:
        self.version = version
        self.model = model
        self.at = time.monotonic()


class ModelRuntime:
    def __init__(self, settings: Settings, models_dir: Path | None = None) -> None:
        self.settings = settings
        self.models_dir = Path(models_dir or settings.models_dir)
        unit = abs(settings.action_weights.get("dislike", 0.0)) or 3.0
        self.dislike_unit = unit
        self._loaded: dict[str, _Loaded] = {}
        self._loading: dict[tuple[str, str], asyncio.Task[FoldInModel | None]] = {}
        # the content index, the catalog it mirrors, and the changes not yet in it
        self._docs: dict[str, Mapping[str, Any]] = {}
        self._dirty: dict[str, Mapping[str, Any]] = {}
        self._after_snapshot: dict[str, Mapping[str, Any]] | None = None
        self._index: ContentIndex | None = None
        self._rebuild: asyncio.Task[None] | None = None
        self._built_at = -float("inf")
        self._build_failed = False
        self._maps: dict[int, tuple[FoldInModel, int, np.ndarray, np.ndarray, np.ndarray]] = {}
        self._last_dislikes: tuple[tuple[Any, ...], np.ndarray] | None = None
        self._last_scores: tuple[tuple[Any, ...], np.ndarray] | None = None  # a request that widens reuses them
        self._ranked: LRUCache[tuple[Any, ...], tuple[tuple[str, float], ...]] = LRUCache(
            ANSWER_PAIRS, getsizeof=lambda ranked: len(ranked) + 1)
        self._cold: LRUCache[tuple[Any, ...], tuple[tuple[tuple[str, float], ...], bool]] = LRUCache(
            ANSWER_PAIRS, getsizeof=lambda cold: len(cold[0]) + 1)

    # -- the catalog ------------------------------------------------------------------------------

    def catalog_changed(self, docs: Mapping[str, Mapping[str, Any]]) -> None:
        """New or replaced catalog documents by "type:id" key (cheap: indexed when next needed)."""
        self._docs.update(docs)
        self._dirty.update(docs)
        if self._after_snapshot is not None:
            self._after_snapshot.update(docs)

    async def warm_up(self) -> None:
        """Build the content index now (a query process calls this once its catalog caught up)."""
        await self.content_index()

    async def content_index(self) -> ContentIndex | None:
        """The content index with every catalog change applied; None while the catalog is empty."""
        if self._index is None:
            if not self._docs or (self._build_failed and time.monotonic() - self._built_at < REFIT_UNKNOWN_LABELS_AFTER_SECONDS):
                return None
            if self._rebuild is None:
                self._rebuild = asyncio.create_task(self._rebuilt())
            await asyncio.shield(self._rebuild)
            return self._index
        if self._dirty:
            self._index.upsert(self._dirty)
            self._dirty = {}
        if self._rebuild is None and self._needs_refit(self._index) and not (
            self._build_failed and time.monotonic() - self._built_at < REFIT_UNKNOWN_LABELS_AFTER_SECONDS
        ):
            self._rebuild = asyncio.create_task(self._rebuilt())
        return self._index

    def _needs_refit(self, index: ContentIndex) -> bool:
        """Many rows added since the fit, or a label the vectorizers do not know (at most every
        REFIT_UNKNOWN_LABELS_AFTER_SECONDS)."""
        if index.added_since_fit > max(REFIT_MIN_ROWS, REFIT_SHARE * index.fitted_rows):
            return True
        return index.unknown_tokens > 0 and time.monotonic() - self._built_at >= REFIT_UNKNOWN_LABELS_AFTER_SECONDS

    async def _rebuilt(self) -> None:
        """Fit the vectorizers on the whole catalog in a worker thread (the current index keeps
        answering meanwhile), then swap, with the changes made during the fit applied."""
        snapshot = dict(self._docs)
        self._after_snapshot = {}
        self._built_at = time.monotonic()
        try:
            index = await asyncio.to_thread(ContentIndex.build, snapshot)
            index.upsert(self._after_snapshot)
            self._index, self._dirty, self._build_failed = index, {}, False
            self._maps.clear()
            self._forget_answers()
            log.info("content index built: %d items, %d features", len(index), index.model.dimensions)
        except Exception:
            self._build_failed = True
            log.exception("content index build failed; the current one (if any) keeps answering, retried in %.0f s",
                          REFIT_UNKNOWN_LABELS_AFTER_SECONDS)
        finally:
            self._after_snapshot = None
            self._rebuild = None

    # -- model versions ---------------------------------------------------------------------------

    async def model(self, name: str, version: str) -> FoldInModel | None:
        """The fold-in form of `name@version`, loading it if needed; None if it cannot be had now."""
        loaded = self._loaded.get(name)
        if loaded is not None and loaded.version == version and (
            loaded.model is not None or time.monotonic() - loaded.at < RETRY_SECONDS
        ):
            return loaded.model
        task = self._loading.get((name, version))
        if task is None:
            task = asyncio.create_task(self._load(name, version))
            self._loading[(name, version)] = task
        try:
            return await asyncio.wait_for(asyncio.shield(task), LOAD_WAIT_SECONDS)
        except TimeoutError:
            return None  # still loading: the published lists answer meanwhile

    def loaded(self, name: str, version: str | None) -> FoldInModel | None:
        """The model if this version is already in memory (never loads)."""
        loaded = self._loaded.get(name)
        return loaded.model if loaded is not None and loaded.version == version else None

    async def _load(self, name: str, version: str) -> FoldInModel | None:
        directory = self.models_dir / name / version
        try:
            model: FoldInModel | None = await asyncio.to_thread(load_fold_in, directory)
        except FoldInUnavailable as why:
            log.warning("fold-in off for %s@%s: %s; serving the published lists", name, version, why)
            model = None
        except Exception:
            log.exception("fold-in off for %s@%s: loading %s failed; serving the published lists", name, version, directory)
            model = None
        finally:
            self._loading.pop((name, version), None)
        self._loaded[name] = _Loaded(version, model)  # the version the read side named as current
        self._forget_answers()
        return model

    # -- the port ---------------------------------------------------------------------------------

    def revision(self) -> Hashable:
        """What this runtime's answers depend on besides their arguments: which model versions are
        in memory (or failed to load) and the content index's identity and generation."""
        models = tuple(sorted((name, entry.version, entry.model is not None) for name, entry in self._loaded.items()))
        return models, _index_tag(self._index)

    async def recommend(
        self, model: str, version: str, weights: Mapping[str, float], n: int,
        item_type: str | None, exclude: Collection[str],
    ) -> Scored | None:
        if not self.settings.fold_in:
            return None
        fold = await self.model(model, version)
        if fold is None:
            return None
        dislikes = self._dislikes(weights) if self.settings.dislike_penalty > 0 else {}
        index = await self.content_index() if dislikes else None
        inputs = (item_type, _digest(weights, exclude), _index_tag(index))
        answer_key = (model, version, n, *inputs)
        remembered = self._ranked.get(answer_key)
        if remembered is not None:
            return list(remembered)
        key = (id(fold), *inputs)
        if self._last_scores is not None and self._last_scores[0] == key:  # the same request, wider
            scores = self._last_scores[1]
        else:
            computed = self._scores(fold, weights, dislikes, index, item_type, exclude)
            if computed is None:
                return None  # nothing positive the model knows: the published list or popularity answers
            scores = computed
            self._last_scores = (key, scores)
        ranked = tuple((fold.keys[i], float(scores[i])) for i in top_k(scores, n))
        if len(ranked) < ANSWER_PAIRS:
            self._ranked[answer_key] = ranked
        return list(ranked)

    def _scores(
        self, fold: FoldInModel, weights: Mapping[str, float], dislikes: Mapping[str, float],
        index: ContentIndex | None, item_type: str | None, exclude: Collection[str],
    ) -> np.ndarray | None:
        """The fold-in scores of every model column, -inf where an item may not be recommended;
        None when the user has nothing positive the model knows."""
        idx, w = fold.user_input(weights)
        if not (w > 0).any():
            return None
        scores = fold.score(idx, w)  # a new array: changed in place below
        if dislikes and index is not None:
            similarity = self._dislike_similarity(index, dislikes)
            columns, rows, _ = self._model_rows(fold, index)
            scores = standardize(scores[None, :])[0]
            scores[columns] -= np.float32(self.settings.dislike_penalty) * similarity[rows]
        scores[idx] = -np.inf  # the user's own items
        scores[fold.cold_columns] = -np.inf  # items without positives in training are cold: the content slots place them
        if item_type is not None:
            scores[~fold.type_mask(item_type)] = -np.inf
        for excluded in exclude:
            column = fold.index.get(excluded)
            if column is not None:
                scores[column] = -np.inf
        return scores

    async def cold_items(
        self, model: str, version: str | None, weights: Mapping[str, float], n: int,
        item_type: str | None, exclude: Collection[str],
    ) -> tuple[Scored, bool]:
        index = await self.content_index()
        if index is None or n <= 0:
            return [], False
        fold = self.loaded(model, version) if version else None
        if fold is None and version and self.settings.fold_in:
            fold = await self.model(model, version)
        # the index as fetched above, even if a rebuild swapped in another meanwhile: its tag keys the answer
        answer_key = (model, version if fold is not None else None, _index_tag(index), n, item_type,
                      _digest(weights, exclude))
        remembered = self._cold.get(answer_key)
        if remembered is None:
            remembered = self._cold_ranking(index, fold, weights, n, item_type, exclude)
            if len(remembered[0]) < ANSWER_PAIRS:
                self._cold[answer_key] = remembered
        return list(remembered[0]), remembered[1]

    def _cold_ranking(
        self, index: ContentIndex, fold: FoldInModel | None, weights: Mapping[str, float], n: int,
        item_type: str | None, exclude: Collection[str],
    ) -> tuple[tuple[tuple[str, float], ...], bool]:
        profile = index.profile(weights)
        if profile is None:
            return (), False
        if fold is not None:
            _, _, candidates = self._model_rows(fold, index)
        else:
            candidates = np.flatnonzero(index.alive)
        if item_type is not None:
            candidates = candidates[index.type_mask(item_type)[candidates]]
        if candidates.size == 0:
            return (), fold is not None
        affinity = index.affinity(profile, candidates)
        dislikes = self._dislikes(weights)
        if dislikes and self.settings.dislike_penalty > 0:
            affinity -= np.float32(self.settings.dislike_penalty) * self._dislike_similarity(index, dislikes)[candidates]
        affinity[affinity < self.settings.cold_item_min_affinity] = 0.0
        skip = set(exclude) | set(weights)
        return tuple(index.top(affinity, n, skip, rows=candidates)), fold is not None

    async def similar(self, item_key: str, n: int, item_type: str | None) -> Scored | None:
        index = await self.content_index()
        if index is None or item_key not in index:
            return None
        return index.similar(item_key, n, item_type)

    # -- helpers ----------------------------------------------------------------------------------

    def _forget_answers(self) -> None:
        """Empty the remembered answers (a model was loaded or the content index rebuilt)."""
        self._ranked.clear()
        self._cold.clear()
        self._last_scores = None

    def _dislikes(self, weights: Mapping[str, float]) -> dict[str, float]:
        """The strongest MAX_DISLIKES negative items, with strength min(1, |w| / |dislike weight|)."""
        negative = sorted((w, k) for k, w in weights.items() if w < 0)[:MAX_DISLIKES]
        return {k: min(1.0, -w / self.dislike_unit) for w, k in negative}

    def _dislike_similarity(self, index: ContentIndex, dislikes: Mapping[str, float]) -> np.ndarray:
        """Per content row: min(1, Σ strength × cosine) to the dislikes (the last one is kept: the
        model's ranking and the cold slots of one request ask for the same)."""
        key = (id(index), index.generation, tuple(sorted(dislikes.items())))
        if self._last_dislikes is not None and self._last_dislikes[0] == key:
            return self._last_dislikes[1]
        keys = list(dislikes)
        rows = index.rows_of(keys)
        known = rows >= 0
        strengths = np.asarray([dislikes[k] for k in keys], dtype=np.float32)[known]
        similarity = index.similarity_sum(rows[known], strengths)
        self._last_dislikes = (key, similarity)
        return similarity

    def _model_rows(self, fold: FoldInModel, index: ContentIndex) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(model columns that are catalogued, their content rows, content rows of the cold items),
        per model and index generation."""
        cached = self._maps.get(id(fold))
        if cached is None or cached[0] is not fold or cached[1] != index.generation:
            rows = index.rows_of(fold.keys)
            catalogued = np.flatnonzero(rows >= 0)
            cold = index.alive.copy()
            cold[rows[(rows >= 0) & fold.warm]] = False
            cached = (fold, index.generation, catalogued, rows[catalogued], np.flatnonzero(cold))
            live = {id(entry.model) for entry in self._loaded.values() if entry.model is not None}
            self._maps = {k: v for k, v in self._maps.items() if k in live}
            self._maps[id(fold)] = cached
        return cached[2], cached[3], cached[4]


def _index_tag(index: ContentIndex | None) -> tuple[int, int]:
    """Which content index, in which state: (serial, generation); (0, -1) for none."""
    return (index.serial, index.generation) if index is not None else (0, -1)


def _digest(weights: Mapping[str, float], exclude: Collection[str]) -> bytes:
    """A short, collision-resistant name for a user's weights and a request's exclusions."""
    content = orjson.dumps([sorted(weights.items()), sorted(exclude)])
    return hashlib.blake2b(content, digest_size=16).digest()
