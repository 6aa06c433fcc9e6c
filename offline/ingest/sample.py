"""A synthetic streaming service for the demo: movies and series, genres, taste clusters, a long tail.

Items get genres and a Zipf-like base popularity; users belong to taste clusters that favour a few
genres and prefer movies or series; each user's interactions (views, likes, ratings, the odd
dislike and watchlist) are drawn from popularity × taste, spread over the last 60 days so that the
1d/7d/30d popularity windows have something to show. Deterministic for a seed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from domain.events import InteractionRecorded, ItemCatalogued, content_event_id, from_unix

GENRES = (
    "Action", "Adventure", "Animation", "Comedy", "Crime", "Documentary", "Drama", "Family",
    "Fantasy", "Horror", "Mystery", "Romance", "Science Fiction", "Thriller", "War", "Western",
)
_ADJECTIVES = (
    "Silent", "Crimson", "Last", "Hidden", "Broken", "Golden", "Midnight", "Distant", "Wild", "Frozen",
    "Electric", "Lonely", "Secret", "Burning", "Endless", "Paper", "Iron", "Velvet", "Hollow", "Bright",
)
_NOUNS = (
    "Harbor", "Empire", "Garden", "Signal", "Orchard", "Frontier", "Mirror", "Voyage", "Kingdom", "Station",
    "Promise", "Archive", "Comet", "Lighthouse", "Republic", "Canyon", "Theory", "Carnival", "Witness", "Tide",
)
_PEOPLE = ("Ana Ruiz", "Kenji Mori", "Lena Berg", "Omar Haddad", "Priya Nair", "Tom Keller", "Zoe Martin", "Ivan Petrov")
_ACTIONS = ("view", "like", "rating", "dislike", "watchlist", "click")
_ACTION_P = (0.55, 0.12, 0.13, 0.04, 0.06, 0.10)


@dataclass
class Sample:
    catalog: list[ItemCatalogued]
    interactions: list[InteractionRecorded]

    @property
    def users(self) -> list[str]:
        return sorted({e.user_id for e in self.interactions}, key=lambda u: int(u.split("-")[1]))


def generate_sample(
    users: int = 600,
    movies: int = 500,
    series: int = 200,
    clusters: int = 8,
    mean_interactions: int = 40,
    seed: int = 7,
    now: float | None = None,
) -> Sample:
    rng = np.random.default_rng(seed)
    now = time.time() if now is None else now
    catalog: list[ItemCatalogued] = []
    item_types: list[str] = []
    item_genres: list[np.ndarray] = []
    for item_type, count in (("movie", movies), ("series", series)):
        for i in range(count):
            genres = rng.choice(len(GENRES), size=int(rng.integers(1, 4)), replace=False)
            item_genres.append(genres)
            item_types.append(item_type)
            adjective, noun = _ADJECTIVES[rng.integers(len(_ADJECTIVES))], _NOUNS[rng.integers(len(_NOUNS))]
            title = f"{adjective} {noun}"
            if item_type == "series":
                title += f": Season {int(rng.integers(1, 5))}"
            year = int(rng.integers(1975, 2026))
            payload: dict[str, Any] = {
                "item_type": item_type,
                "item_id": f"{'m' if item_type == 'movie' else 's'}{i + 1}",
                "title": title,
                "description": f"A {GENRES[genres[0]].lower()} story about a {noun.lower()}.",
                "release_date": f"{year}-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d}",
                "categories": [GENRES[g] for g in genres],
                "keywords": [adjective.lower(), noun.lower()],
                "creators": [str(rng.choice(_PEOPLE))],
            }
            catalog.append(ItemCatalogued.new(event_id=content_event_id("sample-item", payload), source="sample", **payload))
    n_items = len(catalog)
    # Long tail: base popularity ~ 1 / rank^0.6 over a random order of items.
    base = 1.0 / np.arange(1, n_items + 1) ** 0.6
    rng.shuffle(base)
    genre_matrix = np.zeros((n_items, len(GENRES)))
    for i, genres in enumerate(item_genres):
        genre_matrix[i, genres] = 1.0
    is_series = np.array([t == "series" for t in item_types])
    # Taste clusters: 3 favoured genres each, and a lean towards movies or series.
    cluster_genres = [rng.choice(len(GENRES), size=3, replace=False) for _ in range(clusters)]
    cluster_series_lean = rng.uniform(0.3, 3.0, size=clusters)
    interactions: list[InteractionRecorded] = []
    for u in range(users):
        cluster = int(rng.integers(clusters))
        affinity = 0.03 + genre_matrix[:, cluster_genres[cluster]].sum(axis=1) ** 2
        affinity = affinity * np.where(is_series, cluster_series_lean[cluster], 1.0)
        p = base * affinity
        p /= p.sum()
        count = int(min(n_items // 3, max(5, rng.lognormal(np.log(mean_interactions), 0.6))))
        chosen = rng.choice(n_items, size=count, replace=False, p=p)
        for item in chosen:
            action = str(rng.choice(_ACTIONS, p=_ACTION_P))
            value = None
            if action == "rating":
                liked = affinity[item] > 1.0
                value = float(np.clip(rng.normal(4.2 if liked else 2.8, 0.8), 0.5, 5.0).round() )
            ts = int(now - rng.exponential(15 * 86_400) % (60 * 86_400))
            event = catalog[int(item)]
            interactions.append(
                InteractionRecorded.new(
                    event_id=f"sample:{seed}:{u}:{event.item_id}",
                    timestamp=from_unix(ts),
                    user_id=f"user-{u + 1}",
                    item_type=event.item_type,
                    item_id=event.item_id,
                    action=action,
                    value=value,
                    source="sample",
                )
            )
    interactions.sort(key=lambda e: e.timestamp)
    return Sample(catalog, interactions)
