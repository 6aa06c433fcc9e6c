"""Query-string parameters of the read API, validated by pydantic (lax: they arrive as text)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _LegacyParams(BaseModel):
    """The older routes ignore query parameters they do not know, as the older service did (cache
    busters such as `?_=123` keep working); /v1 rejects them."""

    model_config = ConfigDict(extra="ignore", frozen=True)

#: Unix seconds from 1970 to 2200: any other "at" is a mistake, not a moment to compute windows at.
MAX_AT = 7_258_118_400


class PopularityParams(_Params):
    window: str | None = Field(None, min_length=1, max_length=8, description="all, or a number of days from 1d to 366d")
    limit: int = Field(20, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=100_000)
    category: str | None = Field(None, max_length=200)
    at: float | None = Field(
        None, ge=0, le=MAX_AT, allow_inf_nan=False, description="Unix seconds to compute windows at (default: now)"
    )
    decay: bool = True
    source: str | None = Field(None, description="interactions (default) or an external source such as tmdb")


class RecommendationParams(_Params):
    item_type: str | None = None
    limit: int = Field(20, ge=1, le=500)
    exclude: frozenset[str] = Field(
        frozenset(), description="comma-separated item keys to leave out, as item_type:item_id"
    )
    model: str | None = Field(None, max_length=100)
    experiment: str | None = Field(
        None, max_length=32, pattern=r"^[a-z0-9][a-z0-9_-]*$", description="serve the user's variant of this A/B experiment"
    )

    @field_validator("exclude", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(part.strip() for part in value.split(",") if part.strip())
        return value


class ListParams(_Params):
    limit: int = Field(50, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=100_000)


class ArrivalsParams(_Params):
    category: str | None = Field(None, max_length=200, description="only items in this catalog category (case-insensitive)")
    limit: int = Field(20, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=100_000)


class SimilarParams(_Params):
    limit: int = Field(20, ge=1, le=200)
    model: str | None = Field(None, max_length=100)
    item_type: str | None = Field(None, max_length=100, description="only similar items of this type")


class NoParams(_Params):
    """/v1 routes that take no query parameters still refuse unknown ones."""


class LegacyListParams(_LegacyParams):
    limit: int = Field(100, ge=1, le=1000)
