"""The domain's value objects built from configured values.

Settings live in kernel/ and know nothing of the domain; this is where their plain values (item type
names, action weights, the rating centre) become the registry and the weights that every layer
uses. Any object with these attributes will do (the Settings object, a test's namespace), so the
domain does not depend on how configuration is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from domain.item_types import ItemTypeRegistry
from domain.weights import ActionWeights


class DomainSettings(Protocol):
    @property
    def item_types(self) -> tuple[str, ...]: ...

    @property
    def action_weights(self) -> Mapping[str, float]: ...

    @property
    def rating_center(self) -> float: ...

    @property
    def rating_min(self) -> float: ...

    @property
    def rating_max(self) -> float: ...


def item_types_of(settings: DomainSettings) -> ItemTypeRegistry:
    return ItemTypeRegistry(settings.item_types)


def weights_of(settings: DomainSettings) -> ActionWeights:
    return ActionWeights(
        settings.action_weights,
        rating_center=settings.rating_center,
        rating_range=(settings.rating_min, settings.rating_max),
    )
