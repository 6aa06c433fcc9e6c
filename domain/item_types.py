"""The item-type registry: which kinds of things can be recommended.

Item types are data, not code. `movie` and `series` are the defaults; adding `book` is one entry in
MOVIEAUGUR_ITEM_TYPES. Nothing else in the system branches on a type name: views, routes and models
key everything by (item_type, item_id).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")

# Which TMDB v3 kind feeds a type, where one does. Types without one (a book) simply get no
# TMDB collection; everything else works the same.
TMDB_KINDS = {"movie": "movie", "series": "tv"}


class UnknownItemType(ValueError):
    """An item type that is not registered."""


@dataclass(frozen=True)
class ItemType:
    name: str
    tmdb_kind: str | None = None


class ItemTypeRegistry:
    """An ordered, immutable set of item types."""

    def __init__(self, names: Iterable[str]):
        types: dict[str, ItemType] = {}
        for raw in names:
            name = raw.strip().lower()
            if not _NAME.match(name):
                raise ValueError(
                    f"item type {raw!r} is not a valid name: use lower-case letters, digits, '-' or '_'"
                )
            types[name] = ItemType(name, TMDB_KINDS.get(name))
        if not types:
            raise ValueError("at least one item type must be configured (MOVIEAUGUR_ITEM_TYPES)")
        self._types = types

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __iter__(self) -> Iterator[ItemType]:
        return iter(self._types.values())

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._types)

    def get(self, name: str) -> ItemType:
        try:
            return self._types[name]
        except KeyError:
            raise UnknownItemType(
                f"unknown item type {name!r}; registered: {', '.join(self._types)}"
            ) from None
