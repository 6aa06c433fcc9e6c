"""The write side: validate a whole request, turn it into events, append them in one batch.

Nothing is appended unless every element is valid, and the append itself is all-or-nothing, so a
rejected request leaves the log exactly as it was. Retries are safe: events carry ids (given by
the client, or derived from the content for the older API and for catalog writes), and the log and
the projections apply each id once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from functools import cached_property
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError

from commands.schemas import (
    InteractionIn,
    ItemIn,
    ItemWithIdIn,
    LegacyEvent,
    ListItemIn,
    ListItemRef,
    ListOrderIn,
    ValidationContext,
)
from domain.configuration import item_types_of, weights_of
from domain.events import (
    InteractionRecorded,
    ItemCatalogued,
    ListItemAdded,
    ListItemRemoved,
    ListReordered,
    MovieAugurEvent,
    content_event_id,
    from_unix,
)
from domain.ports import AppendResult, EventIdConflict, EventLog
from kernel.errors import RequestError, describe
from kernel.settings import Settings

M = TypeVar("M", bound=BaseModel)
#: Elements validated between two yields to the event loop (about 5 ms of work).
_CHUNK = 1000


class CommandService:
    def __init__(self, log: EventLog, settings: Settings):
        self.log = log
        self.settings = settings
        self.registry = item_types_of(settings)
        self.weights = weights_of(settings)

    def context(self) -> ValidationContext:
        return ValidationContext(
            registry=self.registry,
            weights=self.weights,
            clock_skew_seconds=self.settings.clock_skew_seconds,
            now=time.time(),
        )

    async def _append(self, events: Sequence[MovieAugurEvent]) -> AppendResult:
        """Append the batch; an event id reused with other content is a 409 naming the element."""
        first: dict[str, int] = {}
        for index, event in enumerate(events):
            earlier = first.setdefault(event.event_id, index)
            # a fingerprint only where an id repeats: it is a tenth of an event's cost on this path
            if earlier != index and events[earlier].fingerprint != event.fingerprint:
                raise _conflict(index, event.event_id, f"element {earlier} of this batch")
        try:
            return await self.log.append(events)
        except EventIdConflict as conflict:
            raise _conflict(first[conflict.event_id], conflict.event_id, "an event already in the log") from conflict

    @cached_property
    def _lists(self) -> dict[type[BaseModel], TypeAdapter[Any]]:
        return {
            LegacyEvent: TypeAdapter(list[LegacyEvent]),
            InteractionIn: TypeAdapter(list[InteractionIn]),
            ItemWithIdIn: TypeAdapter(list[ItemWithIdIn]),
        }

    async def _validated(self, model: type[M], body: bytes) -> list[M]:
        """Validate a JSON array body of `model`s, all or nothing.

        Parsed once (orjson), then validated in chunks with a yield to the event loop between
        them, so a maximal batch never holds the loop for long; an error names its element."""
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise RequestError(400, f"body: body is not valid JSON ({error})") from error
        if not isinstance(parsed, list):
            raise RequestError(400, f"body: expected a JSON array of elements, got a JSON {type(parsed).__name__}")
        if not parsed:
            raise RequestError(400, "body: the array should have at least 1 element")
        if len(parsed) > self.settings.max_batch:
            raise RequestError(
                400, f"body: a batch holds at most {self.settings.max_batch} elements, this one has {len(parsed)}; split it"
            )
        adapter, context = self._lists[model], self.context()
        rows: list[M] = []
        for start in range(0, len(parsed), _CHUNK):
            try:
                rows.extend(adapter.validate_python(parsed[start : start + _CHUNK], strict=True, context=context))
            except ValidationError as error:
                described = describe(error, index_offset=start)
                raise RequestError(400, described["error"], details=described["details"]) from error
            if start + _CHUNK < len(parsed):
                await asyncio.sleep(0)
        return rows

    async def record_legacy(self, body: bytes) -> AppendResult:
        """`POST /events` of the older API. Raises pydantic.ValidationError on any bad element."""
        rows = await self._validated(LegacyEvent, body)
        events = [
            InteractionRecorded.new(
                event_id=content_event_id(
                    "legacy", [row.user_id, row.object_type, row.item_id, row.timestamp]
                ),
                timestamp=from_unix(row.timestamp),
                user_id=row.user_id,
                item_type=row.object_type,
                item_id=row.item_id,
                action="view",
                source="legacy-api",
            )
            for row in rows
        ]
        return await self._append(events)

    async def record_interactions(self, body: bytes) -> AppendResult:
        """`POST /v1/events`."""
        now = time.time()
        rows = await self._validated(InteractionIn, body)
        events = [
            InteractionRecorded.new(
                event_id=row.event_id,
                timestamp=from_unix(row.timestamp if row.timestamp is not None else now),
                user_id=row.user_id,
                item_type=row.item_type,
                item_id=row.item_id,
                action=row.action,
                value=row.value,
                source="api",
                server_time=row.timestamp is None,
                # only when sent: records of interactions without one stay as they were
                **({"recommendation_id": row.recommendation_id} if row.recommendation_id else {}),
            )
            for row in rows
        ]
        return await self._append(events)

    async def catalog_item(self, item_type: str, item_id: str, body: bytes) -> AppendResult:
        """`PUT /v1/items/{item_type}/{item_id}`: the body is the item's full metadata."""
        item = ItemWithIdIn.model_validate_json(
            _merge_path(body, item_type, item_id), context=self.context()
        )
        return await self._append([catalog_event(item)])

    async def catalog_items(self, body: bytes) -> AppendResult:
        """`POST /v1/items`: a batch of items, each naming its type and id."""
        items = await self._validated(ItemWithIdIn, body)
        return await self._append([catalog_event(item) for item in items])

    # -- users' lists -------------------------------------------------------------------------

    def _list_owner(self, user_id: str, list_name: str) -> None:
        """The list must be configured (404 naming the configured ones), the user id sane."""
        if list_name not in self.settings.lists:
            configured = ", ".join(self.settings.lists) or "none"
            raise RequestError(404, f"no list {list_name!r}; configured lists: {configured} (MOVIEAUGUR_LISTS)")
        if len(user_id) > 256:
            raise RequestError(400, f"field 'user_id': should have at most 256 characters, not {len(user_id)}")

    @staticmethod
    def _list_event_id(given: str | None, kind: str, content: dict[str, Any], now: float) -> str:
        """The client's event id, or one derived from the content and the second it arrived in:
        the same request sent again within that second is a duplicate, while the same content
        sent later (an item added again after its removal) is a new fact. Any repeat is harmless
        to the view anyway: adding a listed item keeps its place, removing an absent one is a no-op."""
        return given or content_event_id(f"list-{kind}", {**content, "second": int(now)})

    async def add_to_list(self, user_id: str, list_name: str, body: bytes) -> AppendResult:
        """`POST /v1/users/{user_id}/lists/{list_name}`: put an item at the list's end."""
        self._list_owner(user_id, list_name)
        item = ListItemIn.model_validate_json(body, context=self.context())
        now = time.time()
        fields = {"user_id": user_id, "list_name": list_name, "item_type": item.item_type, "item_id": item.item_id}
        event = ListItemAdded.new(
            event_id=self._list_event_id(item.event_id, "add", fields, now), timestamp=from_unix(now), **fields
        )
        return await self._append([event])

    async def remove_from_list(
        self, user_id: str, list_name: str, item_type: str, item_id: str, event_id: str | None = None
    ) -> AppendResult:
        """`DELETE /v1/users/{user_id}/lists/{list_name}/{item_type}/{item_id}`."""
        self._list_owner(user_id, list_name)
        item = ListItemRef.model_validate({"item_type": item_type, "item_id": item_id}, context=self.context())
        now = time.time()
        fields = {"user_id": user_id, "list_name": list_name, "item_type": item.item_type, "item_id": item.item_id}
        event = ListItemRemoved.new(
            event_id=self._list_event_id(event_id, "remove", fields, now), timestamp=from_unix(now), **fields
        )
        return await self._append([event])

    async def reorder_list(self, user_id: str, list_name: str, body: bytes) -> AppendResult:
        """`PUT /v1/users/{user_id}/lists/{list_name}`: the whole list in its new order."""
        self._list_owner(user_id, list_name)
        order = ListOrderIn.model_validate_json(body, context=self.context())
        now = time.time()
        items = [{"item_type": item.item_type, "item_id": item.item_id} for item in order.items]
        fields: dict[str, Any] = {"user_id": user_id, "list_name": list_name, "items": items}
        event = ListReordered.new(
            event_id=self._list_event_id(order.event_id, "order", fields, now), timestamp=from_unix(now), **fields
        )
        return await self._append([event])


def _conflict(index: int, event_id: str, other: str) -> RequestError:
    return RequestError(
        409,
        f"element {index}: event_id {event_id!r} is already used by {other} with different content; "
        "an event id names one fact: send the same content to retry, or a new id for a new fact",
        index=index,
        event_id=event_id,
    )


def catalog_event(item: ItemWithIdIn, source: str = "api") -> ItemCatalogued:
    fields: dict[str, Any] = item.model_dump(include=set(ItemIn.model_fields))
    payload = {"item_type": item.item_type, "item_id": item.item_id, **fields}
    return ItemCatalogued.new(
        event_id=content_event_id("item", payload), source=source, **payload
    )


def _merge_path(body: bytes, item_type: str, item_id: str) -> bytes:
    """Put the path's type and id into the body, so one model validates both with one error
    format; a body that is not a JSON object is left as is and rejected by validation."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if not isinstance(parsed, dict):
        return body
    for name in ("item_type", "item_id"):
        if name in parsed:
            parsed[f"{name} (in body; it comes from the path)"] = parsed.pop(name)
    try:
        return orjson.dumps({**parsed, "item_type": item_type, "item_id": item_id})
    except orjson.JSONEncodeError:  # nested deeper than any valid item: let validation say so
        return body
