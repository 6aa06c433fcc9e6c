"""Model quality on the real ml-latest-small under the §5 protocol.

Slow (about 2-4 minutes on 2 cores): the tuned model re-tunes on every
seed's training split (validation carved from training only), then is
refitted and scored on that seed's test split.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from offline.models import ALS, Popularity
from offline.protocol import run_protocol
from offline.tuning import AutoRecommender

DATA = Path(os.environ.get("MOVIEAUGUR_MOVIELENS", "/work/shared/data/ml-latest-small"))
TARGET_NDCG = 0.345  # project target for the published model

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.skipif(not (DATA / "ratings.csv").exists(), reason=f"no MovieLens at {DATA}"),
]


@pytest.fixture(scope="module")
def report() -> dict:
    models = {
        "popularity": Popularity,
        "als-default": lambda: ALS(factors=64, regularization=10.0, alpha=2.0, iterations=15),
        "tuned": lambda: AutoRecommender(budget_seconds=60.0),
    }
    return run_protocol(DATA, models, seeds=(0, 1, 2))


def test_shape_of_report(report: dict) -> None:
    assert report["seeds"] == [0, 1, 2]
    assert report["n_users"] > 600 and report["n_items"] > 5000
    for r in report["models"].values():
        assert set(r["per_seed"]) == {"0", "1", "2"}
        assert set(r["mean"]) == {"recall@20", "recall@50", "ndcg@100"}


def test_als_beats_popularity(report: dict) -> None:
    m = report["models"]
    assert m["als-default"]["mean"]["ndcg@100"] > m["popularity"]["mean"]["ndcg@100"] + 0.05


def test_tuned_model_reaches_target(report: dict) -> None:
    tuned = report["models"]["tuned"]
    assert tuned["mean"]["ndcg@100"] >= TARGET_NDCG, tuned
    assert tuned["params"]["chosen"]["kind"] in {"ease", "als", "blend"}
