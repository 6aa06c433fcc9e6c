"""Offline recommender models behind one interface (see ``base.Recommender``).

``build_model`` constructs by registry key + params (what configs and
``meta.json`` store); ``load_model`` restores a saved model version. Both
live in :mod:`offline.training.models.registry`.
"""

from offline.training.models.als import ALS, weight_matrix
from offline.training.models.base import ModelFactory, Recommender, top_n
from offline.training.models.blend import Blend, blend_scores, standardize
from offline.training.models.ease import EASE, ease_weights
from offline.training.models.popularity import Popularity
from offline.training.models.registry import REGISTRY, build_model, load_model

__all__ = [
    "ALS",
    "EASE",
    "ModelFactory",
    "Blend",
    "Popularity",
    "Recommender",
    "REGISTRY",
    "blend_scores",
    "build_model",
    "ease_weights",
    "load_model",
    "standardize",
    "top_n",
    "weight_matrix",
]
