"""What the write API accepts, as pydantic models (strict JSON types, unknown fields rejected).

The rules that depend on configuration (registered item types, configured actions, how far in the
future a timestamp may be) read a `ValidationContext` passed at validation time, so the models are
plain data and the registry stays configuration.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated

from annotated_types import Len
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator

from domain.item_types import ItemTypeRegistry
from domain.weights import ActionWeights
from kernel.experiments import RECOMMENDATION_ID, RECOMMENDATION_ID_MAX

NonEmpty = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Label = Annotated[str, StringConstraints(min_length=1, max_length=512)]


@dataclass(frozen=True)
class ValidationContext:
    registry: ItemTypeRegistry
    weights: ActionWeights
    clock_skew_seconds: int
    now: float = field(default_factory=time.time)


def _context(info: ValidationInfo) -> ValidationContext:
    context = info.context
    assert isinstance(context, ValidationContext), "validate with context=ValidationContext(...)"
    return context


def _registered(value: str, info: ValidationInfo) -> str:
    context = _context(info)
    if value not in context.registry:
        raise ValueError(f"unknown item type {value!r}; registered: {', '.join(context.registry.names)}")
    return value


def _not_future(value: int, info: ValidationInfo) -> int:
    context = _context(info)
    if value > context.now + context.clock_skew_seconds:
        raise ValueError(
            f"timestamp {value} is in the future (now is {int(context.now)}, "
            f"allowed clock skew {context.clock_skew_seconds}s)"
        )
    if value < 0:
        raise ValueError("timestamp must be Unix seconds, not negative")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class LegacyEvent(_Strict):
    """One element of the older `POST /events` body: exactly these four fields."""

    user_id: NonEmpty
    item_id: NonEmpty
    object_type: str
    timestamp: int

    _type = field_validator("object_type")(_registered)
    _time = field_validator("timestamp")(_not_future)


class InteractionIn(_Strict):
    """One element of `POST /v1/events`."""

    event_id: NonEmpty
    user_id: NonEmpty
    item_id: NonEmpty
    item_type: str
    action: str = "view"
    value: Annotated[float, Field(allow_inf_nan=False)] | None = Field(default=None, validate_default=True)
    timestamp: int | None = None
    # The `recommendation_id` of the served list this interaction came from (attribution to an
    # A/B variant, kernel/experiments.py); optional.
    recommendation_id: (
        Annotated[str, StringConstraints(max_length=RECOMMENDATION_ID_MAX, pattern=RECOMMENDATION_ID.pattern)] | None
    ) = Field(None, description="the recommendation_id of the served list this interaction came from (A/B attribution)")

    _type = field_validator("item_type")(_registered)
    _time = field_validator("timestamp")(lambda v, info: v if v is None else _not_future(v, info))

    @field_validator("action")
    @classmethod
    def _configured(cls, value: str, info: ValidationInfo) -> str:
        weights = _context(info).weights
        if value not in weights:
            raise ValueError(f"unknown action {value!r}; configured: {', '.join(weights.actions)}")
        return value

    @field_validator("value")
    @classmethod
    def _rating_has_value(cls, value: float | None, info: ValidationInfo) -> float | None:
        if info.data.get("action") != "rating":
            return value
        if value is None:
            raise ValueError("a 'rating' needs a numeric 'value'")
        low, high = _context(info).weights.rating_range
        if not low <= value <= high:
            raise ValueError(f"a rating 'value' must be between {low:g} and {high:g}, not {value:g}")
        return value


class ItemIn(_Strict):
    """Catalog metadata for one item (`PUT /v1/items/{item_type}/{item_id}`)."""

    title: Label | None = None
    description: Annotated[str, StringConstraints(max_length=20_000)] | None = None
    release_date: Annotated[str, StringConstraints(max_length=32)] | None = None
    categories: Annotated[list[Label], Len(0, 100)] | None = None
    keywords: Annotated[list[Label], Len(0, 200)] | None = None
    creators: Annotated[list[Label], Len(0, 100)] | None = None


class ItemWithIdIn(ItemIn):
    """One element of the batch form `POST /v1/items`."""

    item_type: str
    item_id: NonEmpty

    _type = field_validator("item_type")(_registered)


#: Items one reorder (`PUT /v1/users/{user_id}/lists/{list_name}`) may name.
MAX_LIST_ITEMS = 1000


class ListItemRef(_Strict):
    """An item on a user's list."""

    item_type: str
    item_id: NonEmpty

    _type = field_validator("item_type")(_registered)


class ListItemIn(ListItemRef):
    """The body of `POST /v1/users/{user_id}/lists/{list_name}`: the item to put at the list's end.

    `event_id` (optional) names this add: a retry with the same id appends nothing, whenever it
    comes. Without one, the id is derived from the content and the second the add arrived in."""

    event_id: NonEmpty | None = None


class ListOrderIn(_Strict):
    """The body of `PUT /v1/users/{user_id}/lists/{list_name}`: the whole list, in its new order
    (items it does not name are taken off; an empty list empties it)."""

    items: Annotated[list[ListItemRef], Len(0, MAX_LIST_ITEMS)]
    event_id: NonEmpty | None = None

    @field_validator("items")
    @classmethod
    def _each_once(cls, items: list[ListItemRef]) -> list[ListItemRef]:
        first: dict[tuple[str, str], int] = {}
        for index, item in enumerate(items):
            at = first.setdefault((item.item_type, item.item_id), index)
            if at != index:
                raise ValueError(
                    f"element {index} ({item.item_type} {item.item_id!r}) repeats element {at}: a list holds an item once"
                )
        return items
