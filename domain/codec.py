"""Events to self-describing JSON records and back, through eventsourcing's Mapper.

A record is one flat JSON object: `type` (the event's topic), `schema_version`, `_id` (the event's
key, so a document store upserts by it), `originator_id`, and the event's fields. The same bytes
are a Kafka message value, a row in the embedded log and a document Kafka Connect can sink as is.
orjson does the JSON because a 20,000-event batch is encoded on the request path.
"""

from __future__ import annotations

from typing import Any, cast
from uuid import UUID

import orjson
from eventsourcing.persistence import DatetimeAsISO, Mapper, StoredEvent, Transcoder, Transcoding
from eventsourcing.utils import get_topic, resolve_topic

from domain.events import MovieAugurEvent
from domain.typed_records import TypedRecords
from domain.uuids import parse_uuid

_ENVELOPE = ("type", "_id", "originator_id")


class OrjsonTranscoder(Transcoder):
    """eventsourcing's transcoding protocol (`{"_type_", "_data_"}` for non-JSON types) over orjson.

    Only top-level values are searched for transcoded objects on decode: our events are flat.
    Envelope keys are dropped and `schema_version` becomes eventsourcing's `class_version`, so the
    Mapper's upcasting machinery sees exactly the event's own state.
    """

    def __init__(self) -> None:
        self.types: dict[type, Transcoding] = {}
        self.names: dict[str, Transcoding] = {}
        self.register(DatetimeAsISO())

    def register(self, transcoding: Transcoding) -> None:
        self.types[transcoding.type] = transcoding
        self.names[transcoding.name] = transcoding

    def _default(self, obj: Any) -> Any:
        transcoding = self.types.get(type(obj))
        if transcoding is None:
            raise TypeError(f"no transcoding registered for {type(obj).__name__}")
        return {"_type_": transcoding.name, "_data_": transcoding.encode(obj)}

    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj, default=self._default, option=orjson.OPT_PASSTHROUGH_DATETIME)

    def decode(self, data: bytes) -> Any:
        state = orjson.loads(data)
        for key in _ENVELOPE:
            state.pop(key, None)
        state["class_version"] = state.pop("schema_version", 1)
        for key, value in state.items():
            if isinstance(value, dict) and "_type_" in value and len(value) == 2:
                state[key] = self.names[value["_type_"]].decode(value["_data_"])
        return state


class EventCodec:
    """Encodes events as records and decodes records (from any adapter) back into events."""

    def __init__(self) -> None:
        self.transcoder = OrjsonTranscoder()
        self.mapper: Mapper[UUID] = Mapper(transcoder=self.transcoder)
        self._classes: dict[str, type[MovieAugurEvent]] = {}
        self._typed: TypedRecords | None = None

    def encode(self, event: MovieAugurEvent) -> bytes:
        state = dict(vars(event))
        state.pop("originator_version")
        originator_id = state.pop("originator_id")
        record = {
            "type": get_topic(type(event)),
            "schema_version": type(event).class_version,
            "_id": event.key,
            "originator_id": str(originator_id),
            **state,
        }
        return self.transcoder.encode(record)

    def stored(self, event: MovieAugurEvent) -> StoredEvent:
        """The eventsourcing StoredEvent whose state is the self-describing record."""
        return StoredEvent(
            originator_id=event.originator_id,
            originator_version=event.originator_version,
            topic=get_topic(type(event)),
            state=self.encode(event),
        )

    def decode_stored(self, stored: StoredEvent) -> MovieAugurEvent:
        # eventsourcing's Mapper is typed to return its DomainEventProtocol; every topic this codec
        # registers is a MovieAugurEvent class.
        return cast(MovieAugurEvent, self.mapper.to_domain_event(stored))

    def decode(self, record: bytes) -> MovieAugurEvent:
        """A record alone is enough: it names its own type and originator.

        The hot path of every projector: a record of a current schema is decoded by msgspec against
        its class's annotations (domain/typed_records.py); any other goes the general way."""
        if self._typed is None:  # made at the first decode, when the event classes are all defined
            self._typed = TypedRecords(self.transcoder.names)
        event = self._typed.decode(record)
        return event if event is not None else self.decode_generally(record)

    def decode_generally(self, record: bytes) -> MovieAugurEvent:
        """Any record, of any schema version: parsed once and built the way eventsourcing's Mapper
        does (same upcast hooks, same object layout) without a second parse; `decode_stored` is the
        Mapper itself, and tests hold the three ways equal."""
        state = orjson.loads(record)
        cls = self._classes.get(state["type"]) or self._resolve(state["type"])
        originator_id = parse_uuid(state.pop("originator_id"))
        del state["type"]
        state.pop("_id", None)
        from_version = state.pop("schema_version", 1)
        for key, value in state.items():
            if type(value) is dict and "_type_" in value and len(value) == 2:
                state[key] = self.transcoder.names[value["_type_"]].decode(value["_data_"])
        state["originator_id"] = originator_id
        state["originator_version"] = 1
        while from_version < cls.class_version:
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
            from_version += 1
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", state)
        return event

    def _resolve(self, topic: str) -> type[MovieAugurEvent]:
        cls = resolve_topic(topic)
        if not (isinstance(cls, type) and issubclass(cls, MovieAugurEvent)):
            raise ValueError(f"record type {topic!r} is not a MovieAugur event")
        self._classes[topic] = cls
        return cls
