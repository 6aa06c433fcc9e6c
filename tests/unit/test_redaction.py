"""Undoing bad input without rewriting the log: after a redaction and a replay, every view and the
trained model equal those of a log in which the redacted interactions were never posted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from domain.configuration import weights_of
from domain.events import RECOMMENDATIONS, InteractionRecorded, MovieAugurEvent, RecommendationsPublished, from_unix
from kernel.settings import Settings
from movieaugur import operations
from movieaugur.bootstrap import Container, bootstrap
from offline.ingest.sample import generate_sample
from offline.training.interaction_matrix import load_interactions

T0 = 1_700_000_000


def outliers() -> tuple[list[InteractionRecorded], list[InteractionRecorded]]:
    """Accepted but harmful input: a bot liking one title 400 times, and a burst of 5-star ratings
    from one source for another title. Returns (bot events, burst events)."""
    bot = [
        InteractionRecorded.new(event_id=f"bot-{n}", timestamp=from_unix(T0 + n), user_id="bot-1",
                                item_type="movie", item_id="m7", action="like")
        for n in range(400)
    ]
    burst = [
        InteractionRecorded.new(event_id=f"burst-{n}", timestamp=from_unix(T0 + 10 * n), user_id=f"user-{n % 50 + 1}",
                                item_type="series", item_id="s3", action="rating", value=5.0, source="scraper")
        for n in range(120)
    ]
    return bot, burst


async def build(folder: Path, events: list[MovieAugurEvent]) -> Container:
    container = await bootstrap(Settings(mode="embedded", data_dir=folder))
    for start in range(0, len(events), 5000):
        await container.log.append(events[start : start + 5000])
    await operations.catch_up(container)
    return container


async def published(container: Container) -> dict[str, list[tuple[str, float]]]:
    lists = {}
    async for logged in container.log.scan(RECOMMENDATIONS):
        if isinstance(logged.event, RecommendationsPublished):
            lists[logged.event.user_id] = [(f"{r['item_type']}:{r['item_id']}", r["score"]) for r in logged.event.items]
    return lists


async def test_redacted_log_equals_a_log_without_those_events(tmp_path: Path) -> None:
    sample = generate_sample(users=150, movies=120, series=40, seed=5)
    bot, burst = outliers()
    clean: list[MovieAugurEvent] = [*sample.catalog, *sample.interactions]
    dirty = await build(tmp_path / "dirty", [*clean, *bot, *burst])
    pure = await build(tmp_path / "pure", clean)
    try:
        spaces = [space for p in dirty.projections.values() for space in p.spaces]
        assert await dirty.store.dump(spaces) != await pure.store.dump(spaces)  # the outliers show

        # One redaction by user, one by event ids: the burst's ids (a source-wide one is tested below).
        first = await operations.redact(dirty, user_id="bot-1", reason="bot")
        assert first["covered_events"] == len(bot) and first["appended"] == 1
        second = await operations.redact(dirty, event_ids=[e.event_id for e in burst], reason="scraped ratings")
        assert second["covered_events"] == len(burst)
        again = await operations.redact(dirty, user_id="bot-1", reason="bot")  # idempotent
        assert again["appended"] == 0

        assert await dirty.store.dump(spaces) == await pure.store.dump(spaces)

        weights = weights_of(dirty.settings)
        a, b = await load_interactions(dirty.log, weights), await load_interactions(pure.log, weights)
        assert (a.users, a.items) == (b.users, b.items)
        assert (a.matrix != b.matrix).nnz == 0

        # Fixed algorithm and seed (budget 0): the same published recommendations.
        for container in (dirty, pure):
            report = await operations.train(container, time_budget=0, force=True)
            assert report.published, report.reason
        got, want = await published(dirty), await published(pure)
        assert got.keys() == want.keys()
        for user, items in want.items():
            assert [k for k, _ in got[user]] == [k for k, _ in items], user
            assert np.allclose([s for _, s in got[user]], [s for _, s in items], rtol=1e-4)
    finally:
        await dirty.close()
        await pure.close()


async def test_a_source_redaction_within_a_time_range(tmp_path: Path) -> None:
    bot, burst = outliers()
    keep = InteractionRecorded.new(event_id="late", timestamp=from_unix(T0 + 100_000), user_id="user-1",
                                   item_type="series", item_id="s3", action="rating", value=5.0, source="scraper")
    dirty = await build(tmp_path / "dirty", [*burst, keep])
    pure = await build(tmp_path / "pure", [keep])
    try:
        result = await operations.redact(dirty, source="scraper", until_time=T0 + 50_000)
        assert result["covered_events"] == len(burst)
        spaces = [space for p in dirty.projections.values() for space in p.spaces]
        assert await dirty.store.dump(spaces) == await pure.store.dump(spaces)
        # A projector started afresh honours the redaction without being told to replay.
        await operations.replay(dirty, ["popularity"])
        assert await dirty.store.dump(["popularity"]) == await pure.store.dump(["popularity"])
    finally:
        await dirty.close()
        await pure.close()


async def test_redaction_needs_a_rule(container: Container) -> None:
    with pytest.raises(ValueError, match="say what to redact"):
        await operations.redact(container)
