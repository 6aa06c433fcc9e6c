"""Which model to train: validation-based choice among candidates, within a time budget.

A thin seam between the training pipeline and the tuner (offline.tuning), so the pipeline stays the
same whichever search strategy is used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

# Near-default ALS that is known to beat popularity on MovieLens-like data (stack notes:
# regularization ≈ 10 with alpha ≈ 2); used when the tuner is not available or has no time.
DEFAULT_ALS = {"factors": 64, "regularization": 10.0, "alpha": 2.0, "iterations": 15}


@dataclass
class Choice:
    kind: str
    params: dict[str, Any]
    validation: dict[str, float] = field(default_factory=dict)


def choose_model(
    train: sp.csr_matrix,
    time_budget: float,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> Choice:
    try:
        from offline import tuning
    except ImportError:
        tuning = None
    choose = getattr(tuning, "choose", None)
    if choose is None:
        return Choice("als", dict(DEFAULT_ALS))
    return choose(train, time_budget=time_budget, seed=seed, progress=progress)


__all__ = ["Choice", "choose_model", "DEFAULT_ALS", "np"]
