"""TMDB collection into the log, end to end against the fake TMDB server (a real local HTTP server),
and MovieLens re-imports that append nothing new."""

from __future__ import annotations

from pathlib import Path

from movieaugur import operations
from offline.ingest.movielens import import_movielens
from testing.fake_tmdb.server import FakeTmdbServer
from tests.conftest import settle

KEY = "test-key"


async def test_collected_popularity_and_metadata_are_served(client, container) -> None:
    async with FakeTmdbServer(api_key=KEY) as fake:
        container.settings = container.settings.model_copy(
            update={"tmdb_api_key": KEY, "tmdb_base_url": fake.base_url, "tmdb_max_pages": 2, "tmdb_requests_per_10s": 10_000}
        )
        popular = await operations.collect(container, "popularity")
        assert popular["lists"] == {"movie": 40, "series": 30}
        metadata = await operations.collect(container, "metadata")
        assert metadata["appended"] > 60
        again = await operations.collect(container, "metadata")
        assert again == {"appended": 0, "duplicates": metadata["appended"]}  # same content, same ids
    await settle(container)
    body = await (await client.get("/v1/popularity/movie?source=tmdb&limit=5")).json()
    assert body["source"] == "tmdb" and len(body["items"]) == 5
    assert all(item.get("title") for item in body["items"])  # metadata joined from the catalog
    first = body["items"][0]
    item = await (await client.get(f"/v1/items/movie/{first['id']}")).json()
    assert item["links"] == {"tmdb": first["id"]}
    # The older route falls back to the external list while no interaction is known.
    legacy = await client.get("/popularity/series")
    assert legacy.status == 200 and len(await legacy.json()) == 30


async def test_movielens_reimport_appends_nothing_new(container, tmp_path: Path) -> None:
    folder = tmp_path / "ml"
    folder.mkdir()
    (folder / "movies.csv").write_text('movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n2,"Heat, The (1995)",(no genres listed)\n')
    (folder / "links.csv").write_text("movieId,imdbId,tmdbId\n1,0114709,862\n2,0113277,949\n")
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,2.5,964981247\n2,1,5.0,964982224\n")
    first = await import_movielens(container.log, folder)
    assert (first["catalog"].appended, first["ratings"].appended) == (2, 3)
    second = await import_movielens(container.log, folder)
    assert (second["catalog"].appended, second["ratings"].appended) == (0, 0)
    assert (second["catalog"].duplicates, second["ratings"].duplicates) == (2, 3)
    events = [e.event async for e in container.log.scan("items")]
    toy = next(e for e in events if e.item_id == "1")
    assert (toy.title, toy.release_date, toy.categories, toy.links) == (
        "Toy Story", "1995", ["Adventure", "Animation"], {"tmdb": "862", "imdb": "tt0114709"})
    heat = next(e for e in events if e.item_id == "2")
    assert heat.title == "Heat, The" and heat.categories is None


async def test_a_parallel_import_appends_what_one_process_does_each_user_in_file_order(tmp_path: Path) -> None:
    """Three importer processes against one embedded log: the same events as a single importer,
    each user's ratings in file order, and a re-run appends nothing."""
    from domain.codec import EventCodec
    from kernel.settings import Settings
    from movieaugur.bootstrap import build_log
    from movieaugur.parallel_import import import_movielens_parallel

    folder = tmp_path / "ml"
    folder.mkdir()
    (folder / "movies.csv").write_text("movieId,title,genres\n" + "".join(f"{m},Film {m} (2001),Drama\n" for m in range(40)))
    rows = [f"{u},{(u * 7 + k) % 40},{1 + k % 5}.0,{964_000_000 + k}\n" for u in range(60) for k in range(25)]
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + "".join(rows))

    async def ratings_by_user(data_dir: Path) -> dict[str, list[str]]:
        log = build_log(Settings(data_dir=data_dir), EventCodec())
        try:
            found: dict[str, list[str]] = {}
            async for logged in log.scan("interactions"):
                found.setdefault(logged.event.user_id, []).append(logged.event.event_id)
            return found
        finally:
            await log.close()

    single = build_log(Settings(data_dir=tmp_path / "one"), EventCodec())
    try:
        await import_movielens(single, folder)
    finally:
        await single.close()
    seen: list[int] = []
    results = import_movielens_parallel(Settings(data_dir=tmp_path / "three"), folder, 3, lambda _part, n: seen.append(n))
    assert (results["catalog"].appended, results["ratings"].appended, results["ratings"].duplicates) == (40, 1500, 0)
    assert sum(seen) == 1540
    expected = await ratings_by_user(tmp_path / "one")
    assert await ratings_by_user(tmp_path / "three") == expected and len(expected) == 60
    again = import_movielens_parallel(Settings(data_dir=tmp_path / "three"), folder, 3)
    assert (again["ratings"].appended, again["ratings"].duplicates, again["catalog"].duplicates) == (0, 1500, 40)
