"""TMDB client over real HTTP against the local fake server (no mocks of the client).

Timing claims (Retry-After honoured, rate limit) are measured from the server's recorded
arrival times, so the tests check what TMDB would actually see.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kernel.http import parse_retry_after
from offline.ingest.tmdb import (
    Progress,
    TmdbAuthError,
    TmdbClient,
    TmdbConfig,
    TmdbServerError,
    collect_metadata,
    collect_popular,
    iter_metadata,
    map_details,
    map_popular,
)
from testing.fake_tmdb.server import FakeTmdbServer, serve_in_thread

KEY = "test-key"
FAST = dict(backoff_initial=0.01, backoff_max=0.05, backoff_jitter=0.01, rate_limit=1000, rate_period=1.0,
            timeout=5.0, max_retries=3)


@contextlib.asynccontextmanager
async def fake_tmdb(**cfg: Any) -> AsyncIterator[tuple[FakeTmdbServer, TmdbConfig]]:
    async with FakeTmdbServer(api_key=KEY, bearer_token="test-token") as fake:
        options = {**FAST, "api_key": KEY, **cfg}
        yield fake, TmdbConfig(base_url=fake.base_url, **options)


def pages_requested(fake: FakeTmdbServer, kind: str) -> list[int]:
    return sorted(int(r.query["page"]) for r in fake.requests_to(f"/3/{kind}/popular") if r.status == 200)


# -- paging ------------------------------------------------------------------------------------

async def test_popular_fetches_all_pages_and_concatenates_in_rank_order() -> None:
    async with fake_tmdb() as (fake, cfg):
        seen: list[Progress] = []
        movies, tv = await collect_popular(cfg, max_pages=10, progress=seen.append)

    assert pages_requested(fake, "movie") == [1, 2, 3]  # 45 items / 20 per page, stops at total_pages
    assert pages_requested(fake, "tv") == [1, 2]
    assert movies["item_type"] == "movie" and tv["item_type"] == "series"
    assert movies["source"] == "tmdb" and isinstance(movies["observed_at"], int)
    assert abs(movies["observed_at"] - time.time()) < 60
    expected_ids = [str(item["id"]) for item in fake.catalog.popular["movie"]]
    assert [i["item_id"] for i in movies["items"]] == expected_ids
    assert [i["rank"] for i in movies["items"]] == list(range(1, 46))
    scores = [i["score"] for i in movies["items"]]
    assert scores == sorted(scores, reverse=True)
    assert len(tv["items"]) == 30
    assert seen[-1] == Progress("popular", "tv", 2, 2)


async def test_popular_stops_at_max_pages() -> None:
    async with fake_tmdb() as (fake, cfg):
        (movies,) = await collect_popular(cfg, kinds=("movie",), max_pages=2)
    assert pages_requested(fake, "movie") == [1, 2]
    assert len(movies["items"]) == 40
    assert fake.requests_to("/3/tv/popular") == []


# -- retries -----------------------------------------------------------------------------------

async def test_429_waits_retry_after_before_retrying() -> None:
    async with fake_tmdb() as (fake, cfg):
        fake.fail_429("/3/movie/popular", times=1, retry_after=1)
        (movies,) = await collect_popular(cfg, kinds=("movie",), max_pages=1)

    first, second = fake.requests_to("/3/movie/popular")
    assert (first.status, second.status) == (429, 200)
    # Backoff is ~10 ms here, so only the Retry-After header explains a ≥ 1 s gap.
    assert second.at - first.at >= 1.0
    assert len(movies["items"]) == 20


async def test_5xx_is_retried_then_succeeds() -> None:
    path = "/3/movie/1001"
    async with fake_tmdb() as (fake, cfg):
        fake.fail_5xx(path, times=2, status=503)
        async with TmdbClient(cfg) as client:
            entries = await collect_metadata(cfg, {"movie": [1001]}, client=client)
    assert [r.status for r in fake.requests_to(path)] == [503, 503, 200]
    assert client.retries == 2
    assert [e["item_id"] for e in entries] == ["1001"]


async def test_5xx_gives_up_after_max_retries() -> None:
    path = "/3/tv/5001"
    async with fake_tmdb(max_retries=2) as (fake, cfg):
        fake.fail_5xx(path, times=10, status=502)
        with pytest.raises(TmdbServerError) as err:
            await collect_metadata(cfg, {"tv": [5001]})
    assert err.value.status == 502
    assert len(fake.requests_to(path)) == 3  # first attempt + max_retries


async def test_timeout_is_retried_then_succeeds() -> None:
    path = "/3/tv/5003"
    async with fake_tmdb(timeout=0.3) as (fake, cfg):
        fake.slow(path, delay=3.0, times=1)
        started = time.monotonic()
        entries = await collect_metadata(cfg, {"tv": [5003]})
        elapsed = time.monotonic() - started
    assert len(fake.requests_to(path)) == 2
    assert [e["item_id"] for e in entries] == ["5003"]
    assert elapsed < 2.0  # gave up on the slow answer instead of waiting it out


async def test_wrong_key_fails_fast_with_clear_error() -> None:
    async with fake_tmdb(api_key="wrong") as (fake, cfg):
        with pytest.raises(TmdbAuthError) as err:
            await collect_popular(cfg, kinds=("movie",))
    assert err.value.status == 401 and err.value.tmdb_code == 7
    assert "Invalid API key" in str(err.value)
    assert "wrong" not in str(err.value)  # the credential never ends up in messages
    assert len(fake.requests) == 1  # no retries on 401


async def test_bearer_token_auth_is_sent_as_header() -> None:
    async with fake_tmdb(api_key=None, bearer_token="test-token") as (fake, cfg):
        assert cfg.auth_style == "bearer"
        await collect_metadata(cfg, {"movie": [1001]})
    (req,) = fake.requests
    assert req.auth == "bearer" and req.status == 200


# -- rate limit and concurrency ---------------------------------------------------------------

async def test_client_side_rate_limit_spreads_requests() -> None:
    async with fake_tmdb(rate_limit=5, rate_period=0.5) as (fake, cfg):
        await collect_metadata(cfg, {"movie": range(1001, 1011)})
    arrivals = sorted(r.at for r in fake.requests)
    assert len(arrivals) == 10
    assert arrivals[-1] - arrivals[0] >= 0.4  # 5 in a burst, then 10/s


async def test_detail_fetches_are_bounded_by_concurrency() -> None:
    ids = list(range(1001, 1007))
    async with fake_tmdb(concurrency=2) as (fake, cfg):
        for tmdb_id in ids:
            fake.slow(f"/3/movie/{tmdb_id}", delay=0.25)
        started = time.monotonic()
        entries = await collect_metadata(cfg, {"movie": ids})
        elapsed = time.monotonic() - started
    assert [e["item_id"] for e in entries] == [str(i) for i in ids]  # input order kept
    assert elapsed >= 0.7  # 6 slow requests, 2 at a time -> 3 rounds of 0.25 s


# -- malformed and missing items --------------------------------------------------------------

async def test_malformed_popular_item_is_skipped_with_warning(caplog: pytest.LogCaptureFixture) -> None:
    async with fake_tmdb() as (fake, cfg):
        fake.corrupt_popular_item("movie", 3)
        with caplog.at_level(logging.WARNING, logger="offline.ingest.tmdb"):
            (movies,) = await collect_popular(cfg, kinds=("movie",), max_pages=3)
    ranks = [i["rank"] for i in movies["items"]]
    assert len(ranks) == 44 and 4 not in ranks and ranks[3] == 5  # others keep TMDB's positions
    (record,) = [r for r in caplog.records if "malformed" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert "rank 4" in record.getMessage() and "not-a-number" in record.getMessage()
    assert "id" in record.getMessage()


async def test_malformed_details_and_404_are_skipped(caplog: pytest.LogCaptureFixture) -> None:
    async with fake_tmdb() as (fake, cfg):
        fake.corrupt_details("movie", 1002)
        seen: list[Progress] = []
        with caplog.at_level(logging.WARNING, logger="offline.ingest.tmdb"):
            entries = [e async for e in iter_metadata(cfg, {"movie": [1001, 1002, 999999, 1003]}, progress=seen.append)]
    assert sorted(e["item_id"] for e in entries) == ["1001", "1003"]
    messages = " | ".join(r.getMessage() for r in caplog.records)
    assert "id=1002" in messages and "title" in messages and "genres" in messages
    assert "id=999999" in messages and "404" in messages
    assert seen[-1].done == seen[-1].total == 4 and seen[-1].skipped == 2


async def test_metadata_ids_from_popular_records() -> None:
    async with fake_tmdb() as (fake, cfg):
        popular = await collect_popular(cfg, max_pages=1)
        entries = await collect_metadata(cfg, popular=popular)
    assert len(entries) == 40
    assert {e["item_type"] for e in entries} == {"movie", "series"}
    assert entries[0]["item_id"] == popular[0]["items"][0]["item_id"]


# -- mapping -----------------------------------------------------------------------------------

MOVIE = {
    "id": 550, "title": "Fight Club", "overview": "A ticking-time-bomb insomniac...", "release_date": "1999-10-15",
    "genres": [{"id": 18, "name": "Drama"}, {"id": 53, "name": "Thriller"}], "runtime": 139, "adult": False,
    "keywords": {"keywords": [{"id": 825, "name": "support group"}, {"id": 4565, "name": "dystopia"}]},
    "credits": {"cast": [{"id": 819, "name": "Edward Norton"}],
                "crew": [{"id": 7467, "name": "David Fincher", "job": "Director", "department": "Directing"},
                         {"id": 7468, "name": "Jim Uhls", "job": "Screenplay", "department": "Writing"}]},
}
TV = {
    "id": 1399, "name": "Game of Thrones", "overview": "Seven noble families...", "first_air_date": "2011-04-17",
    "genres": [{"id": 10765, "name": "Sci-Fi & Fantasy"}, {"id": 18, "name": "Drama"}],
    "created_by": [{"id": 9813, "name": "David Benioff"}, {"id": 228068, "name": "D. B. Weiss"}],
    "keywords": {"results": [{"id": 6091, "name": "war"}]},
    "credits": {"crew": [{"id": 1, "name": "Episode Director", "job": "Director"}]},
}


def test_map_movie_details() -> None:
    assert map_details("movie", MOVIE) == {
        "item_type": "movie", "item_id": "550", "title": "Fight Club",
        "description": "A ticking-time-bomb insomniac...", "release_date": "1999-10-15",
        "categories": ["Drama", "Thriller"], "keywords": ["support group", "dystopia"],
        "creators": ["David Fincher"], "source": "tmdb",
    }


def test_map_tv_details_uses_created_by_and_configured_type() -> None:
    entry = map_details("tv", TV)
    assert entry == {
        "item_type": "series", "item_id": "1399", "title": "Game of Thrones",
        "description": "Seven noble families...", "release_date": "2011-04-17",
        "categories": ["Sci-Fi & Fantasy", "Drama"], "keywords": ["war"],
        "creators": ["David Benioff", "D. B. Weiss"], "source": "tmdb",
    }
    assert map_details("tv", TV, {"movie": "film", "tv": "show"})["item_type"] == "show"  # type: ignore[index]


def test_map_details_omits_empty_release_date_and_tolerates_missing_appends() -> None:
    entry = map_details("movie", {"id": 7, "title": "Untitled", "release_date": "", "overview": None})
    assert entry is not None and "release_date" not in entry
    assert entry["description"] == "" and entry["keywords"] == [] and entry["creators"] == []


def test_map_details_rejects_wrong_types(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert map_details("movie", {"id": "550", "title": "x"}) is None
        assert map_details("tv", ["not", "an", "object"]) is None
    assert len(caplog.records) == 2 and "id='550'" in caplog.records[0].getMessage()


def test_map_popular_dedupes_and_keeps_first_rank() -> None:
    record = map_popular("tv", [(1, {"id": 5, "popularity": 9.5}), (2, {"id": 6, "popularity": 8}),
                                (3, {"id": 5, "popularity": 9.4})], observed_at=123)
    assert record == {"item_type": "series", "source": "tmdb", "observed_at": 123,
                      "items": [{"item_id": "5", "score": 9.5, "rank": 1}, {"item_id": "6", "score": 8.0, "rank": 2}]}


# -- small pieces ------------------------------------------------------------------------------

def test_parse_retry_after() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_config_validation_and_env() -> None:
    with pytest.raises(ValueError):
        TmdbConfig()
    with pytest.raises(ValueError):
        TmdbConfig(api_key="k", item_types={"game": "game"})
    from kernel.settings import Settings

    settings = Settings(tmdb_api_key="k", tmdb_base_url="http://127.0.0.1:1", item_types=("movie", "series", "book"))
    cfg = TmdbConfig.from_settings(settings, concurrency=2)
    assert (cfg.api_key, cfg.base_url, cfg.concurrency, cfg.auth_style) == ("k", "http://127.0.0.1:1", 2, "api_key")
    assert dict(cfg.item_types) == {"movie": "movie", "tv": "series"}  # a book has no TMDB kind


def test_fake_server_in_thread_for_sync_callers() -> None:
    import asyncio

    with serve_in_thread(api_key=KEY) as fake:
        cfg = TmdbConfig(api_key=KEY, base_url=fake.base_url, **FAST)
        (movies,) = asyncio.run(collect_popular(cfg, kinds=("movie",), max_pages=1))
    assert len(movies["items"]) == 20
