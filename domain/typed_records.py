"""Records of the current schema decoded straight into typed fields by msgspec: the codec's fast path.

Why: a projector decodes every record it reads. Through a generic JSON parse (orjson into a dict,
then the UUID, the transcoded timestamp and the dict surgery in Python) that was 4.5 µs of the
~13 µs a popularity event cost a projector (BENCHMARKS.md §7). msgspec parses a record against a
schema derived from its event class's own annotations, in C, UUID included: 2.1 µs with the
event built.

It is only a shortcut, never a second definition of a record: every schema here is derived from
the event classes, and a record the general path might read differently is left to it (answered
None): an older schema version (upcasting), a type or field the schemas do not know, a value of
another type than the annotation says (msgspec validates; the general path keeps what the JSON
held), a field missing (written before the field existed), an integer outside int64, a
transcoded-looking value where the class does not expect one, and every record of a class whose
annotations this path cannot mirror exactly (see `_checked`). What this path accepts,
it decodes to the event the general path makes (a property test holds the two equal).
"""

from __future__ import annotations

import dataclasses
import logging
import types
import typing
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Union
from uuid import UUID

import msgspec
from eventsourcing.persistence import Transcoding
from eventsourcing.utils import get_topic, resolve_topic

from domain.events import MovieAugurEvent

log = logging.getLogger(__name__)

_as_dict = msgspec.structs.asdict
_Rejected = msgspec.DecodeError  # ValidationError too
# Not event content: what decoding sets itself.
_NOT_FROM_RECORD = frozenset({"originator_id", "originator_version"})
# The record's envelope (domain/codec.py) as this path names it: no event field may take these.
_ENVELOPE_NAMES = frozenset({"type", "_id", "schema_version", "record_id"})


class _Transcoded(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A value eventsourcing's transcoding wrote as {"_type_": name, "_data_": data}."""

    name: str = msgspec.field(name="_type_")
    data: Any = msgspec.field(name="_data_")


@dataclasses.dataclass(frozen=True)
class _Shape:
    """What decoding a record of `cls` leaves to Python after msgspec."""

    cls: type[MovieAugurEvent]
    version: int
    #: Fields the class types as a transcoded type (a datetime): decoded by the codec's transcoding.
    transcoded: tuple[str, ...]
    #: Fields that may hold a dict: the general path would decode a transcoded look-alike there.
    dicts: tuple[str, ...]


def _event_classes(root: type[MovieAugurEvent] = MovieAugurEvent) -> Iterator[type[MovieAugurEvent]]:
    for cls in root.__subclasses__():
        yield cls
        yield from _event_classes(cls)


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (Union, types.UnionType)


# orjson reads an integer outside int64 as something else (a float past 2**64): msgspec would keep
# it exact, so such a record is declined here (msgspec bounds fit int64 only).
_INT = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
_PLAIN = (str, bool, type(None))


def _plain(hint: Any) -> bool:
    """Whether msgspec reads a value of this annotation exactly as orjson does, at any depth: JSON's
    own types only. Not float (msgspec would turn a nested JSON 4 into 4.0), not an int (a nested
    one cannot be bounded), nor anything msgspec would convert from a string (UUID, datetime...)."""
    if hint is Any or hint in _PLAIN or hint in (list, dict):
        return True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is list:
        return _plain(args[0])
    if origin is dict:
        return args[0] is str and _plain(args[1])
    return _is_union(hint) and all(_plain(arg) for arg in args)


def _checked(hint: Any, transcoded: frozenset[type]) -> Any:
    """The annotation as msgspec should check a top-level field, or None where this path cannot
    mirror the general one: a float field also takes an int (the general path keeps a JSON 4 as
    the int 4), an int is bounded to int64, a transcoded type is its {"_type_", "_data_"} object."""
    if hint is float:
        return Union[_INT, float]
    if hint is int:
        return _INT
    if hint in transcoded:
        return _Transcoded
    if _is_union(hint):
        members = [_checked(arg, transcoded) for arg in typing.get_args(hint)]
        return None if any(member is None for member in members) else Union[tuple(members)]
    return hint if _plain(hint) else None


def _may_hold_dict(hint: Any) -> bool:
    if hint is Any or hint is dict or typing.get_origin(hint) is dict:
        return True
    return _is_union(hint) and any(_may_hold_dict(arg) for arg in typing.get_args(hint))


def _mentions(hint: Any, kinds: frozenset[type]) -> bool:
    return hint in kinds or (_is_union(hint) and any(_mentions(arg, kinds) for arg in typing.get_args(hint)))


class _Unmirrored(Exception):
    """A class whose records this path cannot decode as the general path does."""


def _schema(cls: type[MovieAugurEvent], transcoded: frozenset[type]) -> tuple[type[msgspec.Struct], _Shape]:
    topic = get_topic(cls)
    if resolve_topic(topic) is not cls:  # the general path would read the topic as another class
        raise _Unmirrored(f"{topic} does not resolve to {cls.__qualname__}")
    hints = typing.get_type_hints(cls)
    fields: list[Any] = [
        ("schema_version", _INT, 1),
        ("record_id", Any, msgspec.field(name="_id", default=None)),
        ("originator_id", UUID),
    ]
    names_transcoded, names_dicts = [], []
    for field in dataclasses.fields(cls):
        if field.name in _NOT_FROM_RECORD:
            continue
        if field.name in _ENVELOPE_NAMES:
            raise _Unmirrored(f"field {field.name!r} is a name of the record's envelope")
        hint = hints[field.name]
        checked = _checked(hint, transcoded)
        if checked is None:
            raise _Unmirrored(f"field {field.name!r}: {hint}")
        if _mentions(hint, transcoded):
            names_transcoded.append(field.name)
        if _may_hold_dict(hint):
            names_dicts.append(field.name)
        # Required even where the class has a default: the encoder writes every field, and a
        # record without one (written before the field existed) leaves it out of the event's
        # state on the general path, which this path would have to copy field by field.
        fields.append((field.name, checked))
    struct = msgspec.defstruct(
        f"{cls.__name__}Record", fields, kw_only=True, tag_field="type", tag=topic,
        forbid_unknown_fields=True, gc=False,
    )
    msgspec.json.Decoder(struct)  # msgspec checks the types here: a failure leaves the class out
    return struct, _Shape(cls, cls.class_version, tuple(names_transcoded), tuple(names_dicts))


class TypedRecords:
    """Decodes current-schema records of every MovieAugur event class known when it is made."""

    def __init__(self, transcodings: Mapping[str, Transcoding]):
        self.transcodings = transcodings
        kinds = frozenset(transcoding.type for transcoding in transcodings.values())
        classes = list(dict.fromkeys(_event_classes()))  # once each (a class may have two bases)
        topics = Counter(get_topic(cls) for cls in classes)
        self.shapes: dict[type[msgspec.Struct], _Shape] = {}
        for cls in classes:
            if topics[get_topic(cls)] > 1:
                continue  # two classes, one topic: which one a record means is the general path's call
            try:
                struct, shape = _schema(cls, kinds)
            except Exception as error:  # this class's records go the general way; the others still fast
                log.debug("records of %s are decoded the general way: %r", cls.__qualname__, error)
                continue
            self.shapes[struct] = shape
        self.decoder: msgspec.json.Decoder[Any] | None = None
        if self.shapes:
            try:
                self.decoder = msgspec.json.Decoder(Union[tuple(self.shapes)])
            except Exception as error:  # every record goes the general way
                log.warning("typed record decoding is off: %r", error)

    def decode(self, record: bytes) -> MovieAugurEvent | None:
        """The event, or None where the general path must decide (see the module's docstring)."""
        if self.decoder is None:
            return None
        try:
            fields = self.decoder.decode(record)
        except (_Rejected, RecursionError, UnicodeDecodeError):  # not a record this path may take
            return None
        shape = self.shapes[type(fields)]
        if fields.schema_version != shape.version:
            return None
        state = _as_dict(fields)
        del state["schema_version"], state["record_id"]  # the envelope (see domain/codec.py)
        for name in shape.transcoded:
            value = state.get(name)
            if type(value) is _Transcoded:
                state[name] = self.transcodings[value.name].decode(value.data)
        for name in shape.dicts:
            value = state.get(name)
            if type(value) is dict and "_type_" in value and len(value) == 2:
                state[name] = self.transcodings[value["_type_"]].decode(value["_data_"])
        state["originator_version"] = 1
        event = object.__new__(shape.cls)
        object.__setattr__(event, "__dict__", state)
        return event
