"""The codec's fast path (msgspec, domain/typed_records.py) decodes exactly what the general path
does, and declines every record the general path might read differently."""

from __future__ import annotations

from typing import Any, ClassVar

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.codec import EventCodec
from domain.events import INTERACTIONS, InteractionRecorded, ModelPublished, MovieAugurEvent, from_unix
from domain.typed_records import TypedRecords
from tests.unit.test_events import EXAMPLES

codec = EventCodec()
codec.decode(codec.encode(EXAMPLES[0]))  # makes the fast path
typed = codec._typed
assert typed is not None


def both_ways(record: bytes) -> tuple[Any, Any]:
    return typed.decode(record), codec.decode_generally(record)


def same_event(fast: Any, general: Any) -> None:
    assert type(fast) is type(general)
    assert fast == general
    assert vars(fast) == vars(general)
    assert {k: type(v) for k, v in vars(fast).items()} == {k: type(v) for k, v in vars(general).items()}


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: type(e).__name__)
def test_every_example_takes_the_fast_path_and_decodes_alike(event) -> None:  # type: ignore[no-untyped-def]
    fast, general = both_ways(codec.encode(event))
    assert fast is not None, "a current record should not need the general path"
    same_event(fast, general)
    assert fast == event


text = st.text(max_size=30)
interactions = st.builds(
    lambda event_id, user, item, action, value, source, server_time, rid, at: InteractionRecorded.new(
        event_id=event_id, user_id=user, item_type="movie", item_id=item, action=action, value=value,
        source=source, server_time=server_time, recommendation_id=rid, timestamp=from_unix(at)),
    st.text(min_size=1, max_size=40), text, text, text,
    st.none() | st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**53), 2**53),
    text, st.booleans(), st.none() | text, st.integers(0, 4_000_000_000),
)


@given(event=interactions)
def test_any_interaction_decodes_alike_both_ways(event: InteractionRecorded) -> None:
    fast, general = both_ways(codec.encode(event))
    assert fast is not None
    same_event(fast, general)


def record_of(event: Any, **changes: Any) -> bytes:
    fields = orjson.loads(codec.encode(event))
    for name, value in changes.items():
        if value is ...:
            del fields[name]
        else:
            fields[name] = value
    return orjson.dumps(fields)


BASE = EXAMPLES[0]


@pytest.mark.parametrize("record", [
    record_of(BASE, schema_version=0),  # another schema version: upcasting is the general path's
    record_of(BASE, extra="kept"),  # a field the class does not declare: the general path keeps it
    record_of(BASE, recommendation_id=...),  # written before the field existed: absent, not None
    record_of(BASE, server_time=1),  # not the annotated type: the general path keeps the JSON value
    record_of(BASE, user_id=7),
    record_of(BASE, timestamp={"_type_": "datetime_iso", "_data_": "2020-01-01T00:00:00+00:00", "x": 1}),
    record_of(BASE, type="domain.events:NoSuchEvent"),
    b"not json",
], ids=["version", "extra", "missing", "bool-as-int", "str-as-int", "odd-timestamp", "unknown-type", "junk"])
def test_records_the_general_path_might_read_differently_are_declined(record: bytes) -> None:
    assert typed.decode(record) is None


def test_a_declined_record_still_decodes_the_general_way() -> None:
    record = record_of(BASE, extra="kept", value=4)
    event = codec.decode(record)
    assert vars(event)["extra"] == "kept" and vars(event)["value"] == 4


def test_an_int_where_a_float_is_annotated_stays_an_int() -> None:
    fast, general = both_ways(record_of(BASE, value=4))
    assert fast is not None
    same_event(fast, general)
    assert type(fast.value) is int


def test_a_transcoded_look_alike_in_a_dict_field_is_decoded_as_the_general_path_does() -> None:
    model = ModelPublished.new(model="m", model_version="v", algorithm="als", params={}, metrics={}, users=1, items_count=1)
    record = record_of(model, params={"_type_": "datetime_iso", "_data_": "2020-01-01T00:00:00+00:00"})
    fast, general = both_ways(record)
    assert fast is not None
    same_event(fast, general)


def test_integers_outside_int64_are_declined() -> None:
    assert typed.decode(record_of(BASE, value=2**63)) is None  # orjson: an int; msgspec's bounds end at 2**63 - 1
    huge = record_of(BASE, value=1).replace(b'"value":1', b'"value":123456789012345678901234567890')
    assert typed.decode(huge) is None
    assert codec.decode(huge).value == 1.2345678901234568e29  # as orjson reads it


def test_nesting_too_deep_for_msgspec_is_declined_not_raised() -> None:
    model = ModelPublished.new(model="m", model_version="v", algorithm="als", params={}, metrics={}, users=1, items_count=1)
    deep = record_of(model).replace(b'"params":{}', b'"params":' + b'{"a":' * 1010 + b"1" + b"}" * 1010)
    assert typed.decode(deep) is None
    params, depth = codec.decode(deep).params, 0  # decoded the general way (orjson nests to 1024)
    while isinstance(params, dict):
        params, depth = params["a"], depth + 1
    assert (depth, params) == (1010, 1)


class _Scored(MovieAugurEvent):
    """An event whose annotations the fast path cannot mirror: msgspec would read the nested 4 as 4.0."""

    stream: ClassVar[str] = INTERACTIONS
    user_id: str
    scores: list[float]

    @property
    def key(self) -> str:
        return self.user_id


def test_a_class_it_cannot_mirror_goes_the_general_way_and_the_others_stay_fast() -> None:
    fresh = TypedRecords(codec.transcoder.names)
    classes = {shape.cls for shape in fresh.shapes.values()}
    assert _Scored not in classes and InteractionRecorded in classes
    record = codec.encode(_Scored.new(user_id="u", scores=[4, 2.5]))
    assert fresh.decode(record) is None
    assert type(codec.decode(record).scores[0]) is int
    assert fresh.decode(codec.encode(BASE)) == BASE
