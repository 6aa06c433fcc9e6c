"""The per-event UUID builders equal the uuid module's own results, for any input."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from domain.events import EVENT_NAMESPACE
from domain.uuids import parse_uuid, uuid5_of


@given(st.uuids())
def test_parse_uuid_equals_uuid(value: uuid.UUID) -> None:
    for text in (str(value), value.hex, str(value).upper()):
        parsed = parse_uuid(text)
        assert parsed == value and str(parsed) == str(value) and hash(parsed) == hash(value)
        assert parsed.version == value.version and parsed.is_safe == uuid.SafeUUID.unknown


@given(st.text())
def test_parse_uuid_refuses_what_uuid_refuses(text: str) -> None:
    try:
        expected: uuid.UUID | None = uuid.UUID(text)
    except ValueError:
        expected = None
    try:
        got: uuid.UUID | None = parse_uuid(text)
    except ValueError:
        got = None
    assert got == expected


@given(st.text(), st.uuids())
def test_uuid5_of_equals_uuid5(name: str, namespace: uuid.UUID) -> None:
    for space in (namespace, EVENT_NAMESPACE):
        made = uuid5_of(space, name)
        assert made == uuid.uuid5(space, name) and made.version == 5 and str(made) == str(uuid.uuid5(space, name))
