"""Models by registry key: ``build_model`` constructs one from a key + params (what configs and
``meta.json`` store), ``load_model`` restores a saved model version (composites included).

Imports every model module one way; no model module imports this one, so a composite (Blend) gets
its components built and loaded here rather than importing the registry itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from offline.training.models.als import ALS
from offline.training.models.base import ARRAYS_FILE, META_FILE, Recommender
from offline.training.models.blend import Blend
from offline.training.models.ease import EASE
from offline.training.models.popularity import Popularity

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
        comps = [build_model(c["kind"], c["params"], c.get("name")) for c in params["components"]]
        return Blend(comps, params["weights"], name=name)
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
    if isinstance(model, Blend):
        model.components = [load_model(Blend.component_dir(d, i)) for i in range(len(model.components))]
    return model
