"""Published recommendations per (model, user), similar items, and the registry of model versions.

`models/<name>@<version>` keeps every version's parameters and metrics, so the read side can name
and explain any of them. Which version answers for a bare model name is one rule, `current`, used
by every store and mode alike: the most recently published version (ties broken by the version
string). In distributed mode Kafka Connect copies the compacted recommendations topic into MongoDB;
the record key prefixes below are the events' keys (domain/events.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from domain.events import (
    RECOMMENDATIONS,
    ModelPublished,
    MovieAugurEvent,
    RecommendationsPublished,
    SimilarItemsPublished,
)
from projections.base import NO_EFFECT, ConnectSink, Projection
from projections.changes import DocPut, Effect, ViewStore

SPACE = "recommendations"
MODELS_SPACE = "models"
SIMILAR_SPACE = "similar"


def recommendations_key(model: str, user_id: str) -> str:
    return f"{model}:{user_id}"


def similar_key(model: str, item_type: str, item_id: str) -> str:
    return f"{model}:{item_type}:{item_id}"


def model_version_key(model: str, version: str) -> str:
    return f"{model}@{version}"


class RecommendationsProjection(Projection):
    name: ClassVar[str] = "recommendations"
    streams: ClassVar[tuple[str, ...]] = (RECOMMENDATIONS,)
    spaces: ClassVar[tuple[str, ...]] = (SPACE, MODELS_SPACE, SIMILAR_SPACE)
    sink: ClassVar[ConnectSink | None] = ConnectSink(
        "recommendations-sink", "recommendations", {SPACE: "rec:", SIMILAR_SPACE: "sim:", MODELS_SPACE: "model:"},
        record_types={MODELS_SPACE: ModelPublished},
    )

    def effect(self, event: MovieAugurEvent) -> Effect:
        if isinstance(event, RecommendationsPublished):
            doc = {
                "model": event.model,
                "model_version": event.model_version,
                "items": event.items,
                "published_at": event.occurred_at,
            }
            return Effect(changes=(DocPut(SPACE, recommendations_key(event.model, event.user_id), doc),))
        if isinstance(event, SimilarItemsPublished):
            doc = {"model": event.model, "model_version": event.model_version, "items": event.items}
            key = similar_key(event.model, event.item_type, event.item_id)
            return Effect(changes=(DocPut(SIMILAR_SPACE, key, doc),))
        if isinstance(event, ModelPublished):
            doc = {
                "model": event.model,
                "model_version": event.model_version,
                "algorithm": event.algorithm,
                "params": event.params,
                "metrics": event.metrics,
                "users": event.users,
                "items": event.items_count,
                "published_at": event.occurred_at,
            }
            return Effect(changes=(DocPut(MODELS_SPACE, model_version_key(event.model, event.model_version), doc),))
        return NO_EFFECT


def current(versions: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The version that answers for a model name: the most recently published one."""
    return max(versions, key=lambda doc: (doc.get("published_at") or 0, doc["model_version"]), default=None)


# -- reading the view -------------------------------------------------------------------------------


async def read_recommendations(store: ViewStore, model: str, user_id: str) -> dict[str, Any] | None:
    [doc] = await store.get_docs(SPACE, [recommendations_key(model, user_id)])
    return doc


async def read_similar(store: ViewStore, model: str, item_type: str, item_id: str) -> dict[str, Any] | None:
    [doc] = await store.get_docs(SIMILAR_SPACE, [similar_key(model, item_type, item_id)])
    return doc


async def read_model(store: ViewStore, name: str) -> dict[str, Any] | None:
    """`name@version` exactly, or the current version of `name`."""
    if "@" in name:
        [doc] = await store.get_docs(MODELS_SPACE, [name])
        return doc
    keys = await store.keys(MODELS_SPACE, f"{name}@")
    return current(doc for doc in await store.get_docs(MODELS_SPACE, keys) if doc)


async def read_models(store: ViewStore) -> list[dict[str, Any]]:
    """The current version of every model name, by name."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    keys = await store.keys(MODELS_SPACE)
    for doc in await store.get_docs(MODELS_SPACE, keys):
        if doc:
            by_name.setdefault(doc["model"], []).append(doc)
    return [doc for name in sorted(by_name) if (doc := current(by_name[name]))]
