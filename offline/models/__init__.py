"""Offline recommender models behind one interface (see ``base.Recommender``).

``build_model`` constructs by registry key + params (what configs and
``meta.json`` store); ``load_model`` restores a saved model version.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from offline.models.als import ALS, weight_matrix
from offline.models.base import ARRAYS_FILE, META_FILE, Recommender, top_n
from offline.models.blend import Blend, blend_scores, standardize
from offline.models.ease import EASE, ease_weights
from offline.models.popularity import Popularity

REGISTRY: dict[str, type[Recommender]] = {
    Popularity.kind: Popularity,
    EASE.kind: EASE,
    ALS.kind: ALS,
    Blend.kind: Blend,
}


def build_model(kind: str, params: dict[str, Any] | None = None, name: str | None = None) -> Recommender:
    """Unfitted model from a registry key and constructor params."""
    if kind not in REGISTRY:
        raise KeyError(f"unknown model kind {kind!r}; known: {sorted(REGISTRY)}")
    params = dict(params or {})
    if kind == Blend.kind:
        return Blend.placeholder({"params": params, "name": name})
    return REGISTRY[kind](name=name, **params)


def load_model(directory: str | Path) -> Recommender:
    """Restore a model written by ``Recommender.save``."""
    d = Path(directory)
    meta = json.loads((d / META_FILE).read_text())
    model = build_model(meta["kind"], meta["params"], meta.get("name"))
    with np.load(d / ARRAYS_FILE, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    model.n_items = meta.get("n_items")
    model._set_state(arrays, d)
    return model


__all__ = [
    "ALS",
    "EASE",
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
