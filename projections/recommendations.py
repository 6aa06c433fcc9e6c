"""Published recommendations per (model, user), and the registry of model versions.

`models/<name>` is the version that answers for a model name; `models/<name>@<version>` keeps every
version's parameters and metrics, so the read side can name and explain any of them.
"""

from __future__ import annotations

from typing import ClassVar

from domain.events import (
    RECOMMENDATIONS,
    ModelPublished,
    MovieAugurEvent,
    RecommendationsPublished,
    SimilarItemsPublished,
)
from projections.base import NO_EFFECT, Projection
from projections.changes import DocPut, Effect

SPACE = "recommendations"
MODELS_SPACE = "models"
SIMILAR_SPACE = "similar"


def recommendations_key(model: str, user_id: str) -> str:
    return f"{model}:{user_id}"


def similar_key(model: str, item_type: str, item_id: str) -> str:
    return f"{model}:{item_type}:{item_id}"


class RecommendationsProjection(Projection):
    name: ClassVar[str] = "recommendations"
    streams: ClassVar[tuple[str, ...]] = (RECOMMENDATIONS,)
    spaces: ClassVar[tuple[str, ...]] = (SPACE, MODELS_SPACE, SIMILAR_SPACE)

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
            return Effect(
                changes=(
                    DocPut(MODELS_SPACE, event.model, doc),
                    DocPut(MODELS_SPACE, f"{event.model}@{event.model_version}", doc),
                )
            )
        return NO_EFFECT
