"""`movieaugur evaluate`: contract §5 on a MovieLens folder, for the baselines and the model the
project publishes (the same validation-tuned choice the trainer makes)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from offline.evaluation.protocol import DEFAULT_SEEDS, run_protocol
from offline.training.tuning import default_models


def evaluate_dataset(
    dataset: Path,
    seeds: tuple[int, ...] = DEFAULT_SEEDS,
    time_budget: float = 60.0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    models = default_models(budget_seconds=time_budget)
    # The contract's names: popularity, EASE, ALS; "published" is what `train` would publish.
    lineup = {
        "popularity": models["popularity"],
        "ease": models["ease"],
        "als": models["als-default"],
        "als-tuned": models["als-tuned"],
        "blend": models["blend"],
        "published": models["tuned"],
    }
    return run_protocol(dataset, models=lineup, seeds=seeds, progress=progress)
