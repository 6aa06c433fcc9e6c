"""The item catalog: the latest metadata of every item, keyed "item_type:item_id".

In distributed mode Kafka Connect copies the compacted items topic into MongoDB; the read side
decodes those records through this same projection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from domain.events import ITEMS, ItemCatalogued, MovieAugurEvent
from projections.base import NO_EFFECT, ConnectSink, Projection
from projections.changes import DocPut, Effect, ViewStore

SPACE = "items"


def item_key(item_type: str, item_id: str) -> str:
    return f"{item_type}:{item_id}"


class CatalogProjection(Projection):
    name: ClassVar[str] = "catalog"
    streams: ClassVar[tuple[str, ...]] = (ITEMS,)
    spaces: ClassVar[tuple[str, ...]] = (SPACE,)
    sink: ClassVar[ConnectSink | None] = ConnectSink("catalog-sink", "items", {SPACE: ""})

    def effect(self, event: MovieAugurEvent) -> Effect:
        if isinstance(event, ItemCatalogued):
            doc = {**event.metadata(), "updated_at": event.occurred_at}
            return Effect(changes=(DocPut(SPACE, event.key, doc),))
        return NO_EFFECT


# -- reading the view -------------------------------------------------------------------------------


async def read_items(store: ViewStore, refs: Sequence[tuple[str, str]]) -> list[dict[str, Any] | None]:
    """Catalog documents for (item_type, item_id) pairs, None where the catalog has none."""
    return await store.get_docs(SPACE, [item_key(t, i) for t, i in refs])
