"""Which model to train: chosen on a validation split of the training data, within a time budget.

A seam between the training pipeline and the tuner (offline.training.tuning), so the pipeline stays the same
whichever search strategy is used. The tuner never sees the pipeline's held-out part.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import scipy.sparse as sp

from offline.training.tuning import CANDIDATES, tune

# Tiny logs cannot be split for validation: a near-default ALS that is known to behave.
DEFAULT_ALS = {"factors": 64, "regularization": 10.0, "alpha": 2.0, "iterations": 15}
MIN_VALIDATION_POSITIVES = 200


@dataclass
class Choice:
    kind: str
    params: dict[str, Any]
    validation: dict[str, float] = field(default_factory=dict)
    trials: int = 0


def choose_model(
    train: sp.csr_matrix,
    time_budget: float,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    candidates: tuple[str, ...] = CANDIDATES,
) -> Choice:
    if train.nnz < MIN_VALIDATION_POSITIVES or time_budget <= 0:
        return Choice("als", dict(DEFAULT_ALS))
    # EASE inverts an items × items matrix: leave it out where that does not fit in memory.
    if train.shape[1] > 30_000:
        candidates = tuple(c for c in candidates if c == "als")
    result = tune(train, budget_seconds=time_budget, candidates=candidates, seed=seed)
    if progress:
        progress(
            f"selection: {result.best['kind']} {result.best['params']} "
            f"(validation NDCG@100 {result.best_metrics.get('ndcg@100', 0):.4f}, "
            f"{len(result.trials)} trials in {result.elapsed_seconds:.1f}s)"
        )
    return Choice(result.best["kind"], result.best["params"], result.best_metrics, len(result.trials))
