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
