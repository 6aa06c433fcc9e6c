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
held), a field missing (written before the field existed), a transcoded-looking value where the
class does not expect one. What this path accepts,
it decodes to the event the general path makes (a property test holds the two equal).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any, Union
from uuid import UUID

import msgspec
from eventsourcing.persistence import Transcoding
from eventsourcing.utils import get_topic

from domain.events import MovieAugurEvent

_as_dict = msgspec.structs.asdict
_Rejected = msgspec.DecodeError  # ValidationError too
# Not event content: what decoding sets itself.
_NOT_FROM_RECORD = frozenset({"originator_id", "originator_version"})


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


def _widen(hint: Any, transcoded: frozenset[type]) -> Any:
    """The annotation as msgspec should check it: a float field also takes an int (the general
    path keeps a JSON 4 as the int 4), a transcoded type is its {"_type_", "_data_"} object."""
    if hint is float:
        return Union[int, float]
    if hint in transcoded:
        return _Transcoded
    if _is_union(hint):
        return Union[tuple(_widen(arg, transcoded) for arg in typing.get_args(hint))]
    return hint


def _may_hold_dict(hint: Any) -> bool:
    if hint is Any or hint is dict or typing.get_origin(hint) is dict:
        return True
    return _is_union(hint) and any(_may_hold_dict(arg) for arg in typing.get_args(hint))


def _mentions(hint: Any, kinds: frozenset[type]) -> bool:
    return hint in kinds or (_is_union(hint) and any(_mentions(arg, kinds) for arg in typing.get_args(hint)))


def _schema(cls: type[MovieAugurEvent], transcoded: frozenset[type]) -> tuple[type[msgspec.Struct], _Shape]:
    hints = typing.get_type_hints(cls)
    fields: list[Any] = [
        ("schema_version", int, 1),
        ("record_id", Any, msgspec.field(name="_id", default=None)),
        ("originator_id", UUID),
    ]
    names_transcoded, names_dicts = [], []
    for field in dataclasses.fields(cls):
        if field.name in _NOT_FROM_RECORD:
            continue
        hint = hints[field.name]
        checked = _widen(hint, transcoded)
        if _mentions(hint, transcoded):
            names_transcoded.append(field.name)
        if _may_hold_dict(hint):
            names_dicts.append(field.name)
        # Required even where the class has a default: the encoder writes every field, and a
        # record without one (written before the field existed) leaves it out of the event's
        # state on the general path, which this path would have to copy field by field.
        fields.append((field.name, checked))
    struct = msgspec.defstruct(
        f"{cls.__name__}Record", fields, kw_only=True, tag_field="type", tag=get_topic(cls),
        forbid_unknown_fields=True, gc=False,
    )
    return struct, _Shape(cls, cls.class_version, tuple(names_transcoded), tuple(names_dicts))


class TypedRecords:
    """Decodes current-schema records of every MovieAugur event class known when it is made."""

    def __init__(self, transcodings: Mapping[str, Transcoding]):
        self.transcodings = transcodings
        kinds = frozenset(transcoding.type for transcoding in transcodings.values())
        self.shapes: dict[type[msgspec.Struct], _Shape] = {}
        for cls in _event_classes():
            try:
                struct, shape = _schema(cls, kinds)
            except (TypeError, NameError) as error:  # an annotation msgspec cannot check: general path
                del error
                continue
            self.shapes[struct] = shape
        self.decoder = msgspec.json.Decoder(Union[tuple(self.shapes)]) if self.shapes else None

    def decode(self, record: bytes) -> MovieAugurEvent | None:
        """The event, or None where the general path must decide (see the module's docstring)."""
        if self.decoder is None:
            return None
        try:
            fields = self.decoder.decode(record)
        except _Rejected:  # not a record this path may take
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
