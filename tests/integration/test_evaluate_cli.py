"""`movieaugur evaluate --dataset ml-latest-small --json` under contract §5 (seeds 0, 1, 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_evaluate_prints_metrics_and_als_beats_popularity(movielens: Path) -> None:
    executable = str(Path(sys.executable).with_name("movieaugur"))  # this venv's, not whatever is on PATH
    done = subprocess.run(
        [executable, "evaluate", "--dataset", str(movielens), "--json", "--budget", "20"],
        capture_output=True, text=True, timeout=1200, check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["seeds"] == [0, 1, 2]
    models = result["models"]
    for name in ("popularity", "ease", "als", "published"):
        assert set(models[name]["mean"]) == {"recall@20", "recall@50", "ndcg@100"}
    assert models["als"]["mean"]["ndcg@100"] > models["popularity"]["mean"]["ndcg@100"]
    assert models["als"]["mean"]["recall@20"] > models["popularity"]["mean"]["recall@20"]
    assert models["ease"]["mean"]["ndcg@100"] > 0.3  # sanity: the protocol is the published one
