"""The read side of users' lists, new arrivals and notifications, each answer hydrated with catalog
metadata by the query service (fields the catalog does not know are omitted)."""

from __future__ import annotations

from typing import Any

from projections import arrivals as arrivals_view
from projections import catalog as catalog_view
from projections import lists as lists_view
from projections import notifications as notifications_view
from queries.service import NotFound, QueryService, split_key

#: New arrivals in a category: how many arrivals one request may look through at most.
_SCAN_LIMIT = 20_000


class CollectionQueries:
    def __init__(self, service: QueryService):
        self.service = service
        self.store = service.store
        self.settings = service.settings

    # -- lists ---------------------------------------------------------------------------------

    def check_list(self, list_name: str) -> None:
        if list_name not in self.settings.lists:
            configured = ", ".join(self.settings.lists) or "none"
            raise NotFound(f"no list {list_name!r}; configured lists: {configured} (MOVIEAUGUR_LISTS)")

    async def lists(self, user_id: str) -> list[dict[str, Any]]:
        """Every configured list with how many items the user has on it, and its effect."""
        out = []
        for name in self.settings.lists:
            members = await lists_view.read_members(self.store, name, user_id)
            out.append({"name": name, "count": len(members), "effect": self.settings.list_effect(name)})
        return out

    async def list_items(self, user_id: str, list_name: str, limit: int, offset: int) -> list[dict[str, Any]]:
        """The list's items in order; `position` counts from 0, `placed_at` is when the item got
        its place (its add, or the list's last reorder)."""
        self.check_list(list_name)
        rows = await lists_view.read_list(self.store, list_name, user_id, offset, limit)
        items = await self.service.hydrate([(*split_key(member), score) for member, score in rows])
        for position, item in enumerate(items, start=offset):
            item["placed_at"] = int(lists_view.placed_at(item.pop("score")))
            item["position"] = position
        return items

    # -- new arrivals --------------------------------------------------------------------------

    async def new_arrivals(self, item_type: str, category: str | None, limit: int, offset: int) -> list[dict[str, Any]]:
        """Items of a type, the most recently catalogued (for the first time) first; with
        `category`, only items whose catalog categories hold it (case-insensitive)."""
        self.service.check_type(item_type)
        if not category:
            rows = await arrivals_view.read_newest(self.store, item_type, offset, limit)
        else:
            rows = await self._in_category(item_type, category.casefold(), offset + limit)
            rows = rows[offset : offset + limit]
        items = await self.service.hydrate([(item_type, item_id, at) for item_id, at in rows])
        for item in items:
            item["arrived_at"] = int(item.pop("score"))
        return items

    async def _in_category(self, item_type: str, wanted: str, enough: int) -> list[tuple[str, float]]:
        kept: list[tuple[str, float]] = []
        scanned, page = 0, max(2 * enough, 200)
        while len(kept) < enough and scanned < _SCAN_LIMIT:
            rows = await arrivals_view.read_newest(self.store, item_type, scanned, page)
            if not rows:
                break
            scanned += len(rows)
            docs = await catalog_view.read_items(self.service.catalog, [(item_type, item_id) for item_id, _ in rows])
            for row, doc in zip(rows, docs, strict=True):
                if doc is not None and wanted in {c.casefold() for c in doc.get("categories") or ()}:
                    kept.append(row)
            page = min(2 * page, _SCAN_LIMIT)  # each read scans the type's arrivals: read more each time
        return kept

    # -- notifications -------------------------------------------------------------------------

    async def notifications(self, user_id: str, limit: int, offset: int) -> list[dict[str, Any]]:
        """The user's notifications, newest first, each with its item's catalog metadata."""
        docs = await notifications_view.read_notifications(self.store, user_id, offset, limit)
        items = await self.service.hydrate([(doc["item_type"], doc["item_id"], 0.0) for doc in docs])
        out = []
        for doc, item in zip(docs, items, strict=True):
            item.pop("score")
            out.append({"id": doc["id"], "kind": doc["kind"], "notified_at": doc["notified_at"],
                        "reason": doc.get("reason") or {}, "item": item})
        return out
