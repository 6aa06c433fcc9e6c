"""The read side: popularity, recommendations, items, similar items and history from the views.

Every list is returned with catalog metadata (fields the catalog does not know are omitted), and a
user the model has nothing for gets popularity instead, marked as a fallback, never a bare 404.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from domain.configuration import item_types_of
from domain.item_types import ItemTypeRegistry
from kernel.settings import Settings
from projections import catalog as catalog_view
from projections import history as history_view
from projections import lists as lists_view
from projections import matrix as matrix_view
from projections import popularity as popularity_view
from projections import recommendations as recommendations_view
from projections.changes import ViewStore
from projections.popularity import all_time_key
from queries.answers import KEPT_ITEMS, KeptAnswers
from queries.fresh import FreshReads, FreshUser, ModelRuntime, cold_slot_count, interleave
from queries.lists import NO_EFFECTS, ListEffects, list_effects
from queries.model_versions import ModelVersions
from queries.popularity import Window

_SCAN_PAGE = 200
_SCAN_LIMIT = 20_000


class NotFound(LookupError):
    """Nothing is known for what was asked; the message says what."""


#: The view spaces a recommendation list reads, besides the catalog: those every answer may read
#: (the user's lists, weights and history, popularity), and the published lists and model registry,
#: which only an answer from a published list reads. In distributed mode the latter live in the
#: document store, which cannot tell a revision: fold-in answers are kept there all the same.
FRESH_SPACES = (lists_view.SPACE, matrix_view.SPACE, history_view.SPACE, popularity_view.SPACE)
PUBLISHED_SPACES = (recommendations_view.SPACE, recommendations_view.MODELS_SPACE)


@dataclass
class Ranked:
    items: list[dict[str, Any]]
    model: str | None = None
    model_version: str | None = None
    fallback: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Read the published lists (PUBLISHED_SPACES) to be built, whatever it found there (a fallback
    # answers because a list was missing): not for clients.
    read_published: bool = False


def split_key(item_key: str) -> tuple[str, str]:
    item_type, _, item_id = item_key.partition(":")
    return item_type, item_id


class QueryService:
    def __init__(
        self, store: ViewStore, settings: Settings, catalog: ViewStore | None = None, runtime: ModelRuntime | None = None
    ):
        """`catalog`: where item metadata is read (a copy in this process's memory, kept current
        by its own catalog projector; default: the view store). `runtime`: fold-in and the content
        model (queries/fresh.py; without one, recommendations are the published lists)."""
        self.store = store
        self.catalog = catalog or store
        self.settings = settings
        self.runtime = runtime
        self.versions = ModelVersions(store)  # each model name's current version, refreshed off the request path
        self.fresh = FreshReads(store, settings, self.versions) if runtime is not None else None
        self.registry: ItemTypeRegistry = item_types_of(settings)
        self.kept: KeptAnswers[Ranked] = KeptAnswers(size=lambda ranked: len(ranked.items), max_size=KEPT_ITEMS)

    async def revision(self, spaces: Sequence[str]) -> tuple[Hashable, ...] | None:
        """What an answer built from these view spaces and the catalog depends on: the stores'
        revisions (ViewStore.revision); None when one cannot tell."""
        if self.catalog is self.store:  # one question for both
            revisions = [await self.store.revision((*spaces, catalog_view.SPACE))]
        else:
            revisions = [await self.store.revision(spaces), await self.catalog.revision((catalog_view.SPACE,))]
        return None if None in revisions else tuple(revisions)

    def check_type(self, item_type: str) -> None:
        if item_type not in self.registry:
            raise NotFound(f"unknown item type {item_type!r}; registered: {', '.join(self.registry.names)}")

    async def hydrate(self, scored: list[tuple[str, str, float]]) -> list[dict[str, Any]]:
        """(item_type, item_id, score) → catalog metadata objects with the score added."""
        docs = await catalog_view.read_items(self.catalog, [(t, i) for t, i, _ in scored])
        out = []
        for (item_type, item_id, score), doc in zip(scored, docs, strict=True):
            item: dict[str, Any] = {"id": item_id, "object_type": item_type}
            if doc:
                item.update({k: v for k, v in doc.items() if k != "updated_at"})
            item["score"] = round(float(score), 6)
            out.append(item)
        return out

    # -- popularity ----------------------------------------------------------------------------

    async def popularity(
        self,
        item_type: str,
        window: str | None = None,
        limit: int = 20,
        offset: int = 0,
        category: str | None = None,
        at: float | None = None,
        decay: bool = True,
        source: str | None = None,
    ) -> Ranked:
        self.check_type(item_type)
        if source and source != "interactions":
            return await self._external(item_type, source, limit, offset)
        parsed = Window.parse(window or self.settings.default_window)
        keys = parsed.bucket_weights(item_type, self.settings.popularity_half_life_days, at, decay)
        if not category:
            top = await popularity_view.read_top(self.store, keys, offset, limit)
            return Ranked(await self.hydrate([(item_type, m, s) for m, s in top]))
        wanted = category.casefold()

        async def in_category(members: list[str]) -> list[bool]:
            docs = await catalog_view.read_items(self.catalog, [(item_type, m) for m in members])
            return [doc is not None and wanted in {c.casefold() for c in doc.get("categories") or ()} for doc in docs]

        picked = await self._filtered_top(item_type, keys, in_category, offset, limit)
        return Ranked(await self.hydrate(picked))

    async def _filtered_top(
        self,
        item_type: str,
        keys: dict[str, float],
        keep: Callable[[list[str]], Awaitable[list[bool]]],
        offset: int,
        limit: int,
    ) -> list[tuple[str, str, float]]:
        """Page through a popularity ranking, keeping what `keep` accepts (asked once per page),
        until `offset + limit` are kept or the scan limit is reached."""
        kept: list[tuple[str, str, float]] = []
        scanned, page = 0, max(2 * (offset + limit), _SCAN_PAGE)
        while len(kept) < offset + limit and scanned < _SCAN_LIMIT:
            rows = await popularity_view.read_top(self.store, keys, scanned, page)
            if not rows:
                break
            scanned += len(rows)
            verdicts = await keep([m for m, _ in rows])
            kept.extend((item_type, m, s) for (m, s), ok in zip(rows, verdicts, strict=True) if ok)
        return kept[offset : offset + limit]

    async def _external(self, item_type: str, source: str, limit: int, offset: int) -> Ranked:
        doc = await popularity_view.read_external(self.store, item_type, source)
        if not doc:
            return Ranked([], extra={"source": source})
        rows = doc["items"][offset : offset + limit]
        ranked = Ranked(await self.hydrate([(item_type, r["item_id"], r.get("score", 0.0)) for r in rows]))
        ranked.extra = {"source": source, "observed_at": doc.get("observed_at")}
        return ranked

    async def external_sources(self, item_type: str) -> list[str]:
        return await popularity_view.external_sources(self.store, item_type)

    async def legacy_popularity(self, item_type: str, limit: int) -> list[dict[str, Any]]:
        """The older route: interactions first; an external list when no interaction is known."""
        ranked = await self.popularity(item_type, "all", limit=limit)
        if not ranked.items:
            for source in await self.external_sources(item_type):
                ranked = await self._external(item_type, source, limit, 0)
                if ranked.items:
                    break
        if not ranked.items:
            raise NotFound(f"nothing is known yet about the popularity of {item_type!r} items")
        return ranked.items

    # -- recommendations -----------------------------------------------------------------------

    async def model(self, name: str) -> dict[str, Any] | None:
        return await recommendations_view.read_model(self.store, name)

    async def models(self) -> list[dict[str, Any]]:
        return await recommendations_view.read_models(self.store)

    async def seen_among(self, user_id: str, item_keys: list[str]) -> set[str]:
        """Which of these items the user has interacted with: asks about the candidates only,
        so a heavy user's long history costs nothing extra."""
        return await history_view.seen_among(self.store, user_id, item_keys)

    async def recommendations(
        self,
        user_id: str,
        model: str | None = None,
        item_type: str | None = None,
        limit: int = 20,
        exclude: frozenset[str] = frozenset(),
    ) -> Ranked:
        """The user's list, kept until anything it was built from changes (queries/answers.py)."""
        name = model or self.settings.default_model
        revision, published_known, version = await self._rankings_revision(name)

        def keep(ranked: Ranked) -> bool:
            # Built with another version than the key names (a refresh landed meanwhile): not kept.
            same_version = ranked.model_version is None or ranked.model_version == version
            return same_version and (published_known or not ranked.read_published)

        return await self.kept.get(
            (user_id, name, item_type, limit, exclude), revision,
            lambda: self._recommendations(user_id, name, item_type, limit, exclude), keep=keep,
        )

    async def _rankings_revision(self, name: str) -> tuple[Hashable | None, bool, str | None]:
        """The revision a list is kept under, whether it covers the published lists (else only
        fold-in answers, which do not read them, are kept: one that read them, even to find
        nothing and fall back, could stand for a list that is being copied again), and the
        model version it names."""
        fresh = await self.revision(FRESH_SPACES)
        if fresh is None:
            return None, False, None
        published = await self.store.revision(PUBLISHED_SPACES)
        doc = await self.versions.current(name)
        version = doc["model_version"] if doc else None
        runtime = self.runtime.revision() if self.runtime is not None else None
        return (fresh, published, version, runtime), published is not None, version

    async def _recommendations(
        self, user_id: str, name: str, item_type: str | None, limit: int, exclude: frozenset[str]
    ) -> Ranked:
        if item_type is not None:
            self.check_type(item_type)
        if name != self.settings.default_model and await self.versions.current(name) is None:
            raise NotFound(f"unknown model {name!r}; GET /v1/models lists the published ones")
        listed = await self.list_effects(user_id)
        exclude = exclude | listed.excluded
        user = await self._fresh_user(user_id, name)
        fresh = await self._fold_in(user, item_type, limit, exclude, listed)
        if fresh is not None:
            return await self._with_cold_items(user, fresh, item_type, limit, exclude)
        doc = await recommendations_view.read_recommendations(self.store, name, user_id)
        if doc:
            candidates = [
                (r["item_type"], r["item_id"], r["score"])
                for r in doc["items"]
                if (item_type is None or r["item_type"] == item_type) and f"{r['item_type']}:{r['item_id']}" not in exclude
            ]
            seen = await self.seen_among(user_id, [f"{t}:{i}" for t, i, _ in candidates])
            chosen = listed.boost([c for c in candidates if f"{c[0]}:{c[1]}" not in seen])[:limit]
            if chosen:
                ranked = Ranked(await self.hydrate(chosen), model=name, model_version=doc["model_version"],
                                read_published=True)
                return await self._with_cold_items(user, ranked, item_type, limit, exclude)
        ranked = await self._fallback(name, user_id, item_type, limit, exclude, listed)
        ranked.read_published = True  # it answers because the published list was missing or used up
        return await self._with_cold_items(user, ranked, item_type, limit, exclude)

    # -- fresh recommendations: fold-in and cold items (queries/fresh.py) --------------------------

    async def _fresh_user(self, user_id: str, model: str) -> FreshUser | None:
        """The user's current interaction weights and the model's current version, when a model
        runtime is wired and fold-in or cold slots are on."""
        if self.fresh is None or not (self.settings.fold_in or self.settings.cold_item_share > 0):
            return None
        return await self.fresh.user(user_id, model)

    async def _fold_in(
        self, user: FreshUser | None, item_type: str | None, limit: int, exclude: frozenset[str], listed: ListEffects
    ) -> Ranked | None:
        """The current model version's ranking for the user's interactions as they are now; None
        when fold-in cannot run (then the published list answers)."""
        if self.runtime is None or user is None or user.version is None or not user.weights or not self.settings.fold_in:
            return None
        # A heavy user's history is cut at MOVIEAUGUR_FOLD_IN_MAX_HISTORY: items seen beyond the cut may
        # lead the ranking and go to the seen filter, so widen (the runtime keeps the scores) until enough stay.
        truncated = len(user.weights) >= self.settings.fold_in_max_history
        wanted, checked = 2 * limit + 10, 0
        unseen: list[tuple[str, str, float]] = []
        while True:
            rows = await self.runtime.recommend(user.model, user.version, user.weights, wanted, item_type, exclude)
            if not rows:
                return None
            fresh_rows = rows[checked:]
            seen = await self.seen_among(user.user_id, [key for key, _ in fresh_rows])
            unseen.extend((*split_key(key), score) for key, score in fresh_rows if key not in seen)
            checked = len(rows)
            if len(unseen) >= limit or not truncated or len(rows) < wanted or wanted >= 64 * limit:
                break
            wanted *= 4
        chosen = listed.boost(unseen)[:limit]
        if not chosen:
            return None
        return Ranked(await self.hydrate(chosen), model=user.model, model_version=user.version)

    async def _with_cold_items(
        self, user: FreshUser | None, ranked: Ranked, item_type: str | None, limit: int, exclude: frozenset[str]
    ) -> Ranked:
        """Cold items (no interactions in the model) take their share of the slots, ranked by the
        user's content profile; slots no cold item qualifies for stay with `ranked`."""
        slots = cold_slot_count(limit, self.settings.cold_item_share)
        if self.runtime is None or self.fresh is None or user is None or not user.weights or slots == 0:
            return ranked
        listed = {f"{item['object_type']}:{item['id']}" for item in ranked.items}
        rows, model_known = await self.runtime.cold_items(
            user.model, user.version, user.weights, 4 * slots + 8, item_type, exclude | listed
        )
        if not rows:
            return ranked
        seen = await self.seen_among(user.user_id, [key for key, _ in rows])
        rows = [(key, score) for key, score in rows if key not in seen]
        if not model_known:
            rows = await self.fresh.without_interactions(rows)
        if rows:
            cold = await self.hydrate([(*split_key(key), score) for key, score in rows[:slots]])
            ranked.items = interleave(ranked.items, cold, limit, slots)
        return ranked

    async def _fallback(
        self, model: str, user_id: str, item_type: str | None, limit: int, exclude: frozenset[str],
        listed: ListEffects = NO_EFFECTS,
    ) -> Ranked:
        types = [item_type] if item_type else list(self.registry.names)
        merged: list[tuple[str, str, float]] = []
        for kind in types:
            merged.extend(await self._unseen_popular(kind, user_id, limit, exclude))
        merged.sort(key=lambda row: -row[2])
        merged = listed.boost(merged)
        if not merged:
            raise NotFound("nothing is known yet: no recommendations and no popularity to fall back on")
        return Ranked(await self.hydrate(merged[:limit]), model=model, fallback="popularity")

    async def list_effects(self, user_id: str) -> ListEffects:
        """What the user's lists do to their recommendations (queries/lists.py: exclude, boost)."""
        return await list_effects(self.store, self.settings, user_id)

    async def _unseen_popular(
        self, kind: str, user_id: str, limit: int, exclude: frozenset[str]
    ) -> list[tuple[str, str, float]]:
        """The `limit` most popular items of a type that the user has not seen and not excluded."""

        async def unseen(members: list[str]) -> list[bool]:
            keys = [f"{kind}:{m}" for m in members]
            seen = await self.seen_among(user_id, keys)
            return [key not in seen and key not in exclude for key in keys]

        return await self._filtered_top(kind, {all_time_key(kind): 1.0}, unseen, 0, limit)

    # -- items and users -----------------------------------------------------------------------

    async def item(self, item_type: str, item_id: str) -> dict[str, Any]:
        self.check_type(item_type)
        [doc] = await catalog_view.read_items(self.catalog, [(item_type, item_id)])
        score = await popularity_view.read_all_time(self.store, item_type, item_id)
        if doc is None and score is None:
            raise NotFound(f"no {item_type} with id {item_id!r} is known")
        item = {"id": item_id, "object_type": item_type, **(doc or {})}
        item["popularity"] = score or 0.0
        return item

    async def similar(
        self, item_type: str, item_id: str, model: str | None = None, limit: int = 20, filter_type: str | None = None
    ) -> Ranked:
        """The model's "more like this" list; for an item it has none for, content similarity
        (marked `fallback: "content"`). `filter_type` keeps items of that type only."""
        self.check_type(item_type)
        if filter_type is not None:
            self.check_type(filter_type)
        name = model or self.settings.default_model
        doc = await recommendations_view.read_similar(self.store, name, item_type, item_id)
        if doc:
            rows = [(r["item_type"], r["item_id"], r["score"]) for r in doc["items"]
                    if filter_type is None or r["item_type"] == filter_type][:limit]
            if rows:
                return Ranked(await self.hydrate(rows), model=name, model_version=doc["model_version"])
        content = await self._content_similar(name, item_type, item_id, limit, filter_type)
        if content is not None:
            return content
        if doc:
            return Ranked([], model=name, model_version=doc["model_version"])
        raise NotFound(f"model {name!r} has no similar items for {item_type} {item_id!r}, and its catalog metadata "
                       "matches no other item (train first, or catalog it with categories, keywords or a description)")

    async def _content_similar(
        self, name: str, item_type: str, item_id: str, limit: int, filter_type: str | None
    ) -> Ranked | None:
        """"More like this" from catalog metadata (the content model); None when nothing matches."""
        if self.runtime is None:
            return None
        rows = await self.runtime.similar(f"{item_type}:{item_id}", limit, filter_type)
        if not rows:
            return None
        items = await self.hydrate([(*split_key(key), score) for key, score in rows])
        return Ranked(items, model=name, fallback="content")

    async def history(self, user_id: str, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        rows = await history_view.read_history(self.store, user_id, offset, limit)
        items = await self.hydrate([(*split_key(member), ts) for member, ts in rows])
        for item in items:
            item["last_interaction"] = int(item.pop("score"))
        return items
