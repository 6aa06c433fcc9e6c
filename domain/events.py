"""The facts MovieAugur records. Everything else is derived from these by projection or training.

Each event is an eventsourcing `DomainEvent` (a frozen dataclass) with an explicit schema version
(`class_version`); a later version adds a static `upcast_vN_vN+1` so that a replay in a year still
reads today's events. Every event has a stable `event_id` (the idempotency key) from which its
originator id is derived, and a `key` that orders and partitions it in its stream.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import UUID, uuid4

import orjson
from eventsourcing.domain import DomainEvent

from domain.uuids import uuid5_of

# Fixed namespace so the same event_id always maps to the same originator id, on every machine.
EVENT_NAMESPACE = UUID("6f0b8f7e-3c51-4b6c-9a55-8d1f2a7c9e10")

INTERACTIONS = "interactions"
ITEMS = "items"
POPULARITY = "popularity"
RECOMMENDATIONS = "recommendations"
REDACTIONS = "redactions"
LISTS = "lists"
NOTIFICATIONS = "notifications"
STREAMS = (INTERACTIONS, ITEMS, POPULARITY, RECOMMENDATIONS, REDACTIONS, LISTS, NOTIFICATIONS)

# What is not an event's content: where it sits in eventsourcing's terms. The time is content only
# where a client chose it (see `time_is_content`).
_NOT_CONTENT = frozenset({"originator_id", "originator_version"})
# Optional fields added to an event after events without them were recorded (and fingerprinted).
_OPTIONAL_LATER = ("recommendation_id",)


def originator_for(event_id: str) -> UUID:
    return uuid5_of(EVENT_NAMESPACE, event_id)


def content_event_id(prefix: str, payload: Any) -> str:
    """A deterministic id for events whose identity is their content (re-imports append nothing)."""
    digest = hashlib.blake2b(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS), digest_size=12)
    return f"{prefix}:{digest.hexdigest()}"


def from_unix(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def to_unix(moment: datetime) -> int:
    return int(moment.timestamp())


class MovieAugurEvent(DomainEvent):
    """Base of all recorded facts: one event per originator (version 1), identified by event_id."""

    stream: ClassVar[str]
    class_version: ClassVar[int] = 1
    event_id: str

    @property
    def key(self) -> str:
        """Partition key: events with equal keys keep their order."""
        raise NotImplementedError

    @property
    def occurred_at(self) -> int:
        return to_unix(self.timestamp)

    @property
    def time_is_content(self) -> bool:
        """Whether the event's time was chosen by its sender (then two events with one id and
        different times conflict) or stamped on arrival (a retry is stamped again; not content)."""
        return False

    @property
    def fingerprint(self) -> str:
        """A digest of the event's content: two events with one event_id and equal fingerprints
        are the same fact posted twice; different fingerprints are a client reusing an id."""
        content = {k: v for k, v in vars(self).items() if k not in _NOT_CONTENT}
        for name in _OPTIONAL_LATER:  # absent and None are one content: old fingerprints stay valid
            if content.get(name, 0) is None:
                del content[name]
        if self.time_is_content:
            content["timestamp"] = self.occurred_at
        else:
            del content["timestamp"]
        content["type"] = type(self).__name__
        return hashlib.blake2b(orjson.dumps(content, option=orjson.OPT_SORT_KEYS), digest_size=12).hexdigest()

    @classmethod
    def new(cls, *, event_id: str | None = None, timestamp: datetime | None = None, **fields: Any):
        event_id = event_id or str(uuid4())
        # eventsourcing builds each event class's __init__ from its annotations at class creation
        # (a metaclass), which mypy cannot see: it knows only DomainEvent's own fields.
        return cls(  # type: ignore[call-arg]
            originator_id=originator_for(event_id),
            originator_version=1,
            timestamp=timestamp or cls.create_timestamp(),
            event_id=event_id,
            **fields,
        )


class InteractionRecorded(MovieAugurEvent):
    """A user did something with an item: viewed, clicked, liked, disliked, rated, listed it."""

    stream: ClassVar[str] = INTERACTIONS
    user_id: str
    item_type: str
    item_id: str
    action: str = "view"
    value: float | None = None
    source: str = "api"
    # True when the write API stamped the time because the client sent none.
    server_time: bool = False
    # The served list this interaction came from (kernel/experiments.py: it names the experiment
    # and variant), when the client sent it back; events from before it existed have None.
    recommendation_id: str | None = None

    @property
    def key(self) -> str:
        return self.user_id

    @property
    def time_is_content(self) -> bool:
        return not self.server_time

    @property
    def item_key(self) -> str:
        return f"{self.item_type}:{self.item_id}"


class RecommendationsServed(MovieAugurEvent):
    """Lists shown to users inside A/B experiments: the exposures click-through is measured
    against. One event holds every list one query process served in one flush interval, each
    `{"recommendation_id", "user_id", "experiment", "variant", "model", "model_version",
    "fallback", "items": ["item_type:item_id", ...]}`: one record per flush instead of one per list,
    because a log record's fixed costs (append, and a decode by every projector of the stream) are
    what exposures would otherwise add to serving, one per request (docs/experiments.md).

    On the interactions stream (no new topic; everything else reading it skips it by type), keyed
    by its own id. Recorded in the background (queries/exposures.py), so it is best effort: the
    lists a query process served since its last flush are lost if it dies before flushing."""

    stream: ClassVar[str] = INTERACTIONS
    served: list[dict[str, Any]]

    @property
    def key(self) -> str:
        return self.event_id


class ItemCatalogued(MovieAugurEvent):
    """Catalog metadata for one item, as the latest source knew it (a full replacement)."""

    stream: ClassVar[str] = ITEMS
    item_type: str
    item_id: str
    title: str | None = None
    description: str | None = None
    release_date: str | None = None
    categories: list[str] | None = None
    keywords: list[str] | None = None
    creators: list[str] | None = None
    links: dict[str, str] | None = None  # ids elsewhere, e.g. {"tmdb": "862", "imdb": "tt0114709"}
    source: str = "api"

    @property
    def key(self) -> str:
        return f"{self.item_type}:{self.item_id}"

    def metadata(self) -> dict[str, Any]:
        """The contract's item object: fields unknown for the item are omitted."""
        doc: dict[str, Any] = {"id": self.item_id, "object_type": self.item_type}
        for name in ("title", "description", "release_date", "categories", "keywords", "creators", "links"):
            value = getattr(self, name)
            if value is not None:
                doc[name] = value
        return doc


class PopularityObserved(MovieAugurEvent):
    """An externally observed popularity list (e.g. TMDB's popular movies), best first."""

    stream: ClassVar[str] = POPULARITY
    source: str
    item_type: str
    items: list[dict[str, Any]]  # [{"item_id": str, "score": float}]

    @property
    def key(self) -> str:
        return f"{self.source}:{self.item_type}"


class RecommendationsPublished(MovieAugurEvent):
    """A model version's ranked list for one user, replacing that model's previous list."""

    stream: ClassVar[str] = RECOMMENDATIONS
    model: str
    model_version: str
    user_id: str
    items: list[dict[str, Any]]  # [{"item_type": str, "item_id": str, "score": float}]

    @property
    def key(self) -> str:
        return f"rec:{self.model}:{self.user_id}"


class SimilarItemsPublished(MovieAugurEvent):
    """A model version's "more like this" list for one item."""

    stream: ClassVar[str] = RECOMMENDATIONS
    model: str
    model_version: str
    item_type: str
    item_id: str
    items: list[dict[str, Any]]  # [{"item_type": str, "item_id": str, "score": float}]

    @property
    def key(self) -> str:
        return f"sim:{self.model}:{self.item_type}:{self.item_id}"


class ModelPublished(MovieAugurEvent):
    """A trained model version became the one that answers for `model`, with its evidence."""

    stream: ClassVar[str] = RECOMMENDATIONS
    model: str
    model_version: str
    algorithm: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    users: int = 0
    items_count: int = 0

    @property
    def key(self) -> str:
        """Every version keeps its own key, so a compacted topic keeps the whole registry."""
        return f"model:{self.model}@{self.model_version}"


class EventsRedacted(MovieAugurEvent):
    """An operator neutralized interactions already in the log (the log is never rewritten).

    Every projection and the trainer treat an interaction that matches as if it had never been
    posted: the ones named in `event_ids`, and, when `user_id` or `source` is given, every
    interaction of that user and/or from that source whose time lies in [from_time, until_time)
    (either end open when None). See domain/redactions.py for the matching rule."""

    stream: ClassVar[str] = REDACTIONS
    event_ids: list[str]
    user_id: str | None = None
    source: str | None = None
    from_time: int | None = None
    until_time: int | None = None
    reason: str = ""

    @property
    def key(self) -> str:
        return f"redaction:{self.event_id}"


class ListItemAdded(MovieAugurEvent):
    """A user put an item at the end of one of their named lists (an item already on the list
    keeps its place). Its time, stamped on arrival, is the item's place in the list."""

    stream: ClassVar[str] = LISTS
    user_id: str
    list_name: str
    item_type: str
    item_id: str

    @property
    def key(self) -> str:
        return self.user_id

    @property
    def item_key(self) -> str:
        return f"{self.item_type}:{self.item_id}"


class ListItemRemoved(MovieAugurEvent):
    """A user took an item off one of their named lists (removing an absent item changes nothing)."""

    stream: ClassVar[str] = LISTS
    user_id: str
    list_name: str
    item_type: str
    item_id: str

    @property
    def key(self) -> str:
        return self.user_id

    @property
    def item_key(self) -> str:
        return f"{self.item_type}:{self.item_id}"


class ListReordered(MovieAugurEvent):
    """A user's list replaced by exactly these items in this order: items it does not name are
    off the list afterwards (an empty `items` empties the list)."""

    stream: ClassVar[str] = LISTS
    user_id: str
    list_name: str
    items: list[dict[str, str]]  # [{"item_type": str, "item_id": str}], first first

    @property
    def key(self) -> str:
        return self.user_id


class ItemArrived(MovieAugurEvent):
    """An item was catalogued for the first time, and who was told (recorded once per item by the
    arrival notifier, offline/arrival_notifier.py, in one append with those users' `UserNotified`).

    Its time is the time of that first catalogue event: the fact that dates the item in "new
    arrivals", on a stream that is never compacted, so a replay dates every item as before even
    when the compacted items topic has kept only the item's latest record. Its id is derived from
    the item alone; `notified` is content, so a second decision about the same item that differs
    from the first conflicts with it and is refused whole."""

    stream: ClassVar[str] = NOTIFICATIONS
    item_type: str
    item_id: str
    categories: list[str] | None = None
    notified: list[str] | None = None  # the users told about it, best suited first

    @property
    def key(self) -> str:
        return f"arrival:{self.item_type}:{self.item_id}"


class UserNotified(MovieAugurEvent):
    """Something was announced to one user: today a new arrival (`kind` "new_arrival") that suits
    the user's history, with the reason it was chosen."""

    stream: ClassVar[str] = NOTIFICATIONS
    user_id: str
    kind: str
    item_type: str
    item_id: str
    reason: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        return self.user_id


EVENT_TYPES: tuple[type[MovieAugurEvent], ...] = (
    InteractionRecorded,
    RecommendationsServed,
    ItemCatalogued,
    PopularityObserved,
    RecommendationsPublished,
    SimilarItemsPublished,
    ModelPublished,
    EventsRedacted,
    ListItemAdded,
    ListItemRemoved,
    ListReordered,
    ItemArrived,
    UserNotified,
)
