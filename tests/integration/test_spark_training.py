"""`movieaugur train --engine spark`: Spark MLlib ALS in local mode, through the same quality gate,
model registry and publishing path as the in-process engine, served by the embedded app.

Needs pyspark (in the `test` extra) and Java 17; the JVM runs in the CLI's own process.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from movieaugur.bootstrap import Container
from offline.ingest.sample import generate_sample
from offline.training.models import ALS, load_model
from tests.conftest import settle

pytestmark = pytest.mark.timeout(600)


async def test_spark_engine_passes_the_gate_and_its_model_is_served(client, container: Container) -> None:  # type: ignore[no-untyped-def]
    try:
        import pyspark  # noqa: F401
    except ImportError:
        pytest.fail("pyspark is missing: `bash scripts/setup.sh test` installs it (the test extra)")
    sample = generate_sample(users=300, movies=200, series=80, seed=11)
    await container.log.append(sample.catalog)
    await container.log.append(sample.interactions)
    settings = container.settings
    env = {**os.environ, "MOVIEAUGUR_DATA_DIR": str(settings.data_dir), "MOVIEAUGUR_SPARK_MASTER": "local[2]",
           "MOVIEAUGUR_SPARK_DRIVER_MEMORY": "1g"}
    env.pop("MOVIEAUGUR_SNAPSHOT_DIR", None)
    built = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "movieaugur.cli", "snapshot", "--json"],
                                    env=env, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "movieaugur.cli", "train", "--engine", "spark",
                                                    "--json"], env=env, capture_output=True, text=True, timeout=540)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    report = json.loads(done.stdout[done.stdout.index("{"):])
    assert report["published"] and report["engine"] == "spark" and report["source"] == "snapshot"
    assert report["metrics"]["ndcg@100"] > report["baseline"]["ndcg@100"]
    ends = await container.log.end_offsets("interactions")
    assert report["log_positions"] == {"interactions/0": ends[0]}

    saved = load_model(Path(settings.models_dir) / settings.default_model / report["version"])
    assert isinstance(saved, ALS) and saved.item_factors.shape == (report["items"], report["params"]["factors"])

    await settle(container)
    user = sample.users[0]
    body = await (await client.get(f"/v1/users/{user}/recommendations?limit=10")).json()
    assert body["model_version"] == report["version"] and body["fallback"] is None, body
    assert len(body["items"]) == 10
    model = await (await client.get(f"/v1/models/{settings.default_model}@{report['version']}")).json()
    assert model["params"]["engine"] == "spark" and model["metrics"]["holdout"] == report["metrics"]
