"""The item catalog: the latest metadata of every item, keyed "item_type:item_id"."""

from __future__ import annotations

from typing import ClassVar

from domain.events import ITEMS, ItemCatalogued, MovieAugurEvent
from projections.base import NO_EFFECT, Projection
from projections.changes import DocPut, Effect

SPACE = "items"


class CatalogProjection(Projection):
    name: ClassVar[str] = "catalog"
    streams: ClassVar[tuple[str, ...]] = (ITEMS,)
    spaces: ClassVar[tuple[str, ...]] = (SPACE,)

    def effect(self, event: MovieAugurEvent) -> Effect:
        if isinstance(event, ItemCatalogued):
            doc = {**event.metadata(), "updated_at": event.occurred_at}
            return Effect(changes=(DocPut(SPACE, event.key, doc),))
        return NO_EFFECT
