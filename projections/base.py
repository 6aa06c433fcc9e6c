"""What a projection is: a name, the streams it reads, the spaces it owns, a pure mapping from each
event to its effect on the view, and who keeps the view in distributed mode.

The class is the one declaration of its view. Everything that must agree about a view derives
from it: the projector runner (streams, spaces), the distributed store's routing (a projector
writes the view, or a Kafka Connect sink copies its stream into MongoDB), the connector
registration (which template, which collection) and replay (rebuild into a shadow, or reset the
sink). Its module also owns the view's key layout and the read helpers the query side uses.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from domain.events import MovieAugurEvent
from projections.changes import Effect

NO_EFFECT = Effect(changes=())


@dataclass(frozen=True)
class ConnectSink:
    """In distributed mode Kafka Connect's MongoDB sink keeps this view, not a projector.

    The sink copies the projection's (compacted) stream into `collection`, one document per record
    key; a view document of `space` at `key` is the record whose `_id` is `record_prefixes[space] +
    key`, decoded and passed through the projection's own `effect`. `connector` names the template
    in infra/connect/ (`<connector>.json`) and, after the topic prefix, the registered connector.
    """

    connector: str
    collection: str
    record_prefixes: Mapping[str, str] = field(default_factory=dict)
    #: For a space whose documents are all records of one event class (and few among many in the
    #: collection), that class: a reader lists the space by the record's `type` field, an equality
    #: a MongoDB-wire server can answer without reading every document (FerretDB filters `_id`
    #: prefixes itself, after fetching the whole collection).
    record_types: Mapping[str, type[MovieAugurEvent]] = field(default_factory=dict)

    def connector_name(self, topic_prefix: str) -> str:
        """Named after the topic prefix, so deployments sharing a Connect cluster never collide."""
        return f"{topic_prefix}{self.connector}"


class Projection(ABC):
    name: ClassVar[str]
    streams: ClassVar[tuple[str, ...]]
    spaces: ClassVar[tuple[str, ...]]
    #: Who keeps the view in distributed mode: None for a projector, or the Connect sink.
    sink: ClassVar[ConnectSink | None] = None

    @abstractmethod
    def effect(self, event: MovieAugurEvent) -> Effect:
        """The view changes this event causes (NO_EFFECT for events it ignores)."""
