"""Domain: event records are self-describing, versioned JSON that decode to equal events."""

from __future__ import annotations

import os
from typing import ClassVar

import orjson
import pytest

from domain.codec import EventCodec
from domain.configuration import item_types_of, weights_of
from domain.events import (
    INTERACTIONS,
    InteractionRecorded,
    ItemCatalogued,
    ModelPublished,
    MovieAugurEvent,
    PopularityObserved,
    RecommendationsPublished,
    SimilarItemsPublished,
    from_unix,
    originator_for,
)
from domain.item_types import ItemTypeRegistry, UnknownItemType
from domain.weights import ActionWeights, UnknownAction
from kernel.settings import Settings

codec = EventCodec()

EXAMPLES = [
    InteractionRecorded.new(event_id="e1", timestamp=from_unix(1_700_000_000), user_id="u1", item_type="movie", item_id="m1", action="rating", value=4.5),
    ItemCatalogued.new(item_type="series", item_id="s1", title="Dark", categories=["Drama"], links={"tmdb": "70523"}),
    PopularityObserved.new(source="tmdb", item_type="movie", items=[{"item_id": "1", "score": 9.5}]),
    RecommendationsPublished.new(model="default", model_version="v1", user_id="u1", items=[{"item_type": "movie", "item_id": "m2", "score": 0.5}]),
    SimilarItemsPublished.new(model="default", model_version="v1", item_type="movie", item_id="m1", items=[]),
    ModelPublished.new(model="default", model_version="v1", algorithm="als", params={"factors": 8}, metrics={"ndcg@100": 0.3}),
]


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: type(e).__name__)
def test_record_round_trip(event: MovieAugurEvent) -> None:
    record = codec.encode(event)
    assert codec.decode(record) == event
    assert codec.decode_stored(codec.stored(event)) == event


def test_record_is_self_describing_json() -> None:
    record = orjson.loads(codec.encode(EXAMPLES[0]))
    assert record["type"] == "domain.events:InteractionRecorded"
    assert record["schema_version"] == 1
    assert record["_id"] == "u1"  # the partition key, and a document id for sinks
    assert record["event_id"] == "e1"
    assert record["value"] == 4.5


def test_originator_is_derived_from_event_id() -> None:
    a = InteractionRecorded.new(event_id="same", user_id="u", item_type="movie", item_id="1")
    b = InteractionRecorded.new(event_id="same", user_id="u", item_type="movie", item_id="1")
    assert a.originator_id == b.originator_id == originator_for("same")
    assert a.stream == INTERACTIONS


class _RatedV2(MovieAugurEvent):
    """A later schema of an event: v1 records had `stars`, v2 calls it `value` and adds `scale`."""

    stream: ClassVar[str] = INTERACTIONS
    class_version: ClassVar[int] = 2
    user_id: str
    value: float
    scale: int

    @property
    def key(self) -> str:
        return self.user_id

    @staticmethod
    def upcast_v1_v2(state: dict) -> None:
        state["value"] = state.pop("stars")
        state["scale"] = 5


def test_old_schema_versions_are_upcast_on_read() -> None:
    old_record = orjson.dumps({
        "type": f"{__name__}:_RatedV2",
        "schema_version": 1,
        "_id": "u1",
        "originator_id": str(originator_for("old")),
        "timestamp": {"_type_": "datetime_iso", "_data_": "2020-01-01T00:00:00+00:00"},
        "event_id": "old",
        "user_id": "u1",
        "stars": 4.0,
    })
    event = codec.decode(old_record)
    assert isinstance(event, _RatedV2)
    assert (event.value, event.scale) == (4.0, 5)
    assert orjson.loads(codec.encode(event))["schema_version"] == 2


def test_item_types_are_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    assert item_types_of(Settings()).names == ("movie", "series")
    monkeypatch.setenv("MOVIEAUGUR_ITEM_TYPES", "movie,series,book")
    registry = item_types_of(Settings())
    assert "book" in registry and registry.get("book").tmdb_kind is None
    assert registry.get("series").tmdb_kind == "tv"
    with pytest.raises(UnknownItemType, match="registered: movie, series, book"):
        registry.get("podcast")
    with pytest.raises(ValueError, match="not a valid name"):
        ItemTypeRegistry(["Bad Name"])


def test_action_weights_from_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOVIEAUGUR_ACTION_WEIGHTS", "like=5,share=2")
    weights = weights_of(Settings())
    assert weights.weight("like") == 5.0
    assert weights.weight("share") == 2.0
    assert weights.weight("dislike") < 0
    assert weights.weight("rating", 5.0) == 2.0 and weights.weight("rating", 1.0) == -2.0
    with pytest.raises(UnknownAction):
        ActionWeights({"view": 1.0}).weight("like")


def test_what_a_logged_interaction_counts_is_its_weight_or_nothing() -> None:
    """The projections' path: an action the configuration no longer weighs, or a rating outside
    the scale, counts nothing instead of failing the projector."""
    weights = ActionWeights({"view": 1.0, "rating": 1.0})
    assert weights.counted("view") == weights.weight("view") == 1.0
    assert weights.counted("rating", 4.5) == weights.weight("rating", 4.5) == 1.5
    assert weights.counted("like") == 0.0
    assert weights.counted("rating", 9.0) == weights.counted("rating", None) == 0.0


async def test_the_embedded_log_takes_a_repeat_within_a_batch_once_and_refuses_a_reused_id(tmp_path) -> None:
    from domain.ports import EventIdConflict
    from movieaugur.adapters.sqlite_log import SQLiteEventLog

    def fact(event_id: str, item_id: str) -> InteractionRecorded:
        return InteractionRecorded.new(event_id=event_id, timestamp=from_unix(1_700_000_000), user_id="u1",
                                       item_type="movie", item_id=item_id)

    log = SQLiteEventLog(tmp_path / "log.sqlite")
    try:
        result = await log.append([fact("a", "m1"), fact("b", "m2"), fact("a", "m1")])
        assert (result.appended, result.duplicates) == (2, 1)
        with pytest.raises(EventIdConflict):
            await log.append([fact("c", "m3"), fact("c", "m4")])
        with pytest.raises(EventIdConflict):
            await log.append([fact("d", "m5"), fact("a", "m9")])
        assert [e.event.event_id for e in (await log.read(INTERACTIONS, 0, 1, 100)).events] == ["a", "b"]
    finally:
        await log.close()


def _open_and_append(path: str, start: object, outcome: object) -> None:
    """One process of the test below: open the embedded log the moment the others do, append."""
    import asyncio

    from movieaugur.adapters.sqlite_log import SQLiteEventLog

    start.wait()  # type: ignore[attr-defined]
    try:
        log = SQLiteEventLog(path)
        fact = InteractionRecorded.new(event_id=f"p{os.getpid()}", timestamp=from_unix(1_700_000_000), user_id="u1",
                                       item_type="movie", item_id="m1")
        asyncio.run(log.append([fact]))
        asyncio.run(log.close())
        outcome.put("ok")  # type: ignore[attr-defined]
    except Exception as error:  # the test reports what went wrong in which process
        outcome.put(repr(error))  # type: ignore[attr-defined]


def test_processes_opening_a_new_embedded_log_at_once_all_succeed(tmp_path) -> None:
    """Parallel importers open a fresh log together; SQLite's switch to WAL and the table creation
    raced there ("database is locked" in about half of such starts) until the log took its file lock."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    for attempt in range(8):
        start, outcome = context.Barrier(3), context.Queue()
        path = str(tmp_path / f"log{attempt}" / "events.sqlite")
        processes = [context.Process(target=_open_and_append, args=(path, start, outcome)) for _ in range(3)]
        for process in processes:
            process.start()
        results = [outcome.get(timeout=60) for _ in processes]
        for process in processes:
            process.join(timeout=60)
        assert results == ["ok"] * 3, f"attempt {attempt}: {results}"
