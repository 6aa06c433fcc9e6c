"""Deterministic made-up TMDB catalog for the fake server: same JSON shapes, invented content.

Generated from a seed rather than stored, so tests and the demo get a realistic spread
(genres, keywords, directors, creators, an empty release date, an empty overview) without
shipping data files or touching the real API.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

MOVIE_GENRES: dict[int, str] = {
    28: "Action", 12: "Adventure", 16: "Animation", 35: "Comedy", 80: "Crime", 99: "Documentary",
    18: "Drama", 10751: "Family", 14: "Fantasy", 36: "History", 27: "Horror", 10402: "Music",
    9648: "Mystery", 10749: "Romance", 878: "Science Fiction", 53: "Thriller", 10752: "War", 37: "Western",
}
TV_GENRES: dict[int, str] = {
    10759: "Action & Adventure", 16: "Animation", 35: "Comedy", 80: "Crime", 99: "Documentary",
    18: "Drama", 10751: "Family", 10762: "Kids", 9648: "Mystery", 10765: "Sci-Fi & Fantasy",
    10768: "War & Politics", 37: "Western",
}
_ADJ = ["Silent", "Crimson", "Last", "Hidden", "Broken", "Golden", "Distant", "Wild", "Frozen", "Electric",
        "Lost", "Midnight", "Iron", "Paper", "Hollow"]
_NOUN = ["Harbor", "Garden", "Signal", "Empire", "River", "Witness", "Orchard", "Frontier", "Lantern",
         "Archive", "Voyage", "Kingdom", "Circuit", "Tide", "Summit"]
_KEYWORDS = ["based on novel", "heist", "time travel", "small town", "revenge", "coming of age", "dystopia",
             "friendship", "family secrets", "road trip", "detective", "space", "survival", "artificial intelligence",
             "courtroom", "sports", "music band", "island", "war veteran", "haunted house"]
_FIRST = ["Ada", "Bruno", "Chiara", "Dmitri", "Elena", "Farid", "Greta", "Hiro", "Ines", "Jonas", "Kemi", "Luca"]
_LAST = ["Moreau", "Okafor", "Lindqvist", "Tanaka", "Ferreira", "Novak", "Rossi", "Haddad", "Kowalski", "Byrne"]

MOVIE_ID_BASE = 1000
TV_ID_BASE = 5000


@dataclass
class FakeCatalog:
    """``details[kind][id]`` is the full details JSON (with keywords and credits);
    ``popular[kind]`` the list items in popularity order."""

    details: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)
    popular: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    genres: dict[str, dict[int, str]] = field(default_factory=dict)


def _person(rng: random.Random, pid: int) -> dict[str, Any]:
    return {"id": pid, "name": f"{rng.choice(_FIRST)} {rng.choice(_LAST)}", "gender": rng.choice([1, 2]),
            "profile_path": None}


def _title(rng: random.Random, used: set[str]) -> str:
    while True:
        title = f"The {rng.choice(_ADJ)} {rng.choice(_NOUN)}"
        if title in used:
            title = f"{title} {len(used) % 7 + 2}"
        if title not in used:
            used.add(title)
            return title


def _date(rng: random.Random) -> str:
    return f"{rng.randint(1975, 2026)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def _common(rng: random.Random, tmdb_id: int, genres: dict[int, str], rank: int, n: int) -> dict[str, Any]:
    genre_ids = rng.sample(sorted(genres), k=rng.randint(1, 3))
    return {
        "id": tmdb_id,
        "genre_ids": genre_ids,
        "popularity": round(1000.0 * (n - rank) / n + rng.random(), 3),
        "vote_average": round(rng.uniform(4.5, 8.9), 1),
        "vote_count": rng.randint(10, 25000),
        "poster_path": f"/p{tmdb_id}.jpg",
        "backdrop_path": f"/b{tmdb_id}.jpg",
        "original_language": "en",
        "adult": False,
    }


def _movie(rng: random.Random, rank: int, n: int, used: set[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    tmdb_id = MOVIE_ID_BASE + rank + 1
    base = _common(rng, tmdb_id, MOVIE_GENRES, rank, n)
    title = _title(rng, used)
    release = "" if rank == n - 1 else _date(rng)  # an unreleased title, as TMDB has them
    overview = f"{title}: a story about {rng.choice(_KEYWORDS)} and {rng.choice(_KEYWORDS)}."
    item = {**base, "title": title, "original_title": title, "overview": overview, "release_date": release, "video": False}
    directors = [_person(rng, 90000 + tmdb_id * 3 + k) for k in range(1 if rank % 5 else 2)]
    crew = [{**d, "job": "Director", "department": "Directing", "credit_id": f"c{d['id']}"} for d in directors]
    crew.append({**_person(rng, 80000 + tmdb_id), "job": "Screenplay", "department": "Writing", "credit_id": "w"})
    details = {
        **{k: v for k, v in item.items() if k != "genre_ids"},
        "genres": [{"id": g, "name": MOVIE_GENRES[g]} for g in base["genre_ids"]],
        "runtime": rng.randint(80, 170), "status": "Released" if release else "Post Production", "tagline": "",
        "keywords": {"keywords": [{"id": 100 + _KEYWORDS.index(k), "name": k} for k in rng.sample(_KEYWORDS, 3)]},
        "credits": {"cast": [{**_person(rng, 70000 + tmdb_id), "character": "Lead", "order": 0}], "crew": crew},
    }
    return item, details


def _tv(rng: random.Random, rank: int, n: int, used: set[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    tmdb_id = TV_ID_BASE + rank + 1
    base = _common(rng, tmdb_id, TV_GENRES, rank, n)
    name = _title(rng, used)
    overview = "" if rank == n - 1 else f"{name}: a series about {rng.choice(_KEYWORDS)}."
    item = {**base, "name": name, "original_name": name, "overview": overview, "first_air_date": _date(rng),
            "origin_country": ["US"]}
    creators = [_person(rng, 60000 + tmdb_id * 2 + k) for k in range(1 + rank % 2)]
    details = {
        **{k: v for k, v in item.items() if k != "genre_ids"},
        "genres": [{"id": g, "name": TV_GENRES[g]} for g in base["genre_ids"]],
        "created_by": [{**c, "credit_id": f"cb{c['id']}"} for c in creators],
        "number_of_seasons": rng.randint(1, 9), "status": "Returning Series",
        "keywords": {"results": [{"id": 100 + _KEYWORDS.index(k), "name": k} for k in rng.sample(_KEYWORDS, 2)]},
        "credits": {"cast": [], "crew": [{**_person(rng, 50000 + tmdb_id), "job": "Director", "department": "Directing"}]},
    }
    return item, details


def build_catalog(n_movies: int = 45, n_tv: int = 30, seed: int = 7) -> FakeCatalog:
    """Same seed, same catalog: ids are ``1001..`` for movies and ``5001..`` for TV, by popularity."""
    rng = random.Random(seed)
    catalog = FakeCatalog(genres={"movie": dict(MOVIE_GENRES), "tv": dict(TV_GENRES)})
    for kind, n, make in (("movie", n_movies, _movie), ("tv", n_tv, _tv)):
        used: set[str] = set()
        pairs = [make(rng, rank, n, used) for rank in range(n)]
        catalog.popular[kind] = [item for item, _ in pairs]
        catalog.details[kind] = {d["id"]: d for _, d in pairs}
    return catalog
