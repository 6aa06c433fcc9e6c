"""Pydantic models of the TMDB v3 response shapes we read (extra fields ignored).

They exist to reject a malformed item *before* it becomes a catalog entry: TMDB is an outside
source, and one bad record must be skipped with a reason, not crash a run or poison the
catalog. Only the fields we use are declared; everything else TMDB sends is ignored, so new
fields on their side never break us. Ids are strict ints (a string or bool id is malformed).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt


class _TmdbModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class PopularItem(_TmdbModel):
    """One entry of /3/{movie,tv}/popular ``results``."""

    id: StrictInt
    popularity: float = 0.0
    title: str | None = None
    name: str | None = None


class PopularPage(_TmdbModel):
    """The page envelope; ``results`` stay raw dicts so each item is validated on its own."""

    page: int
    results: list[Any]
    total_pages: int = Field(ge=0)
    total_results: int = Field(ge=0)


class Named(_TmdbModel):
    """Genres, keywords and TV ``created_by`` entries all share {id, name}."""

    id: StrictInt
    name: str


class CrewMember(_TmdbModel):
    id: StrictInt | None = None
    name: str
    job: str | None = None


class Credits(_TmdbModel):
    crew: list[CrewMember] = []


class MovieKeywords(_TmdbModel):
    """Movies nest keywords as ``{"keywords": [...]}``."""

    keywords: list[Named] = []


class TvKeywords(_TmdbModel):
    """TV shows nest keywords as ``{"results": [...]}`` (TMDB's asymmetry, not ours)."""

    results: list[Named] = []


class _Details(_TmdbModel):
    id: StrictInt
    overview: str | None = None
    genres: list[Named] = []
    credits: Credits | None = None


class MovieDetails(_Details):
    """/3/movie/{id}?append_to_response=keywords,credits"""

    title: str = Field(min_length=1)
    release_date: str | None = None
    keywords: MovieKeywords | None = None


class TvDetails(_Details):
    """/3/tv/{id}?append_to_response=keywords,credits"""

    name: str = Field(min_length=1)
    first_air_date: str | None = None
    keywords: TvKeywords | None = None
    created_by: list[Named] = []


class GenreList(_TmdbModel):
    """/3/genre/{movie,tv}/list"""

    genres: list[Named]
