"""Stable import path for the offline recommenders.

The implementations live in the small :mod:`offline.models` package (one
module per model); this module re-exports them so callers can write
``from offline.recommenders import EASE, ALS, load_model``.
"""

from offline.models import (  # noqa: F401
    ALS,
    EASE,
    REGISTRY,
    Blend,
    Popularity,
    Recommender,
    blend_scores,
    build_model,
    load_model,
    top_n,
)

__all__ = ["ALS", "EASE", "REGISTRY", "Blend", "Popularity", "Recommender", "blend_scores", "build_model", "load_model", "top_n"]
