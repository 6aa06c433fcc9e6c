"""The Spark master and worker of infra/compose.yml (`train --engine spark`, the "spark" profile), as
Compose resolves the file (no Docker engine here: see tests/integration/test_compose.py for what
that leaves unproven)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from kernel.settings import Settings

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"


@pytest.fixture(scope="module")
def merged() -> dict:
    compose = shutil.which("docker-compose")
    if not compose:
        pytest.fail("docker-compose is not on PATH: run `bash scripts/setup.sh test`")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "MOVIEAUGUR_"))}
    done = subprocess.run([compose, "-f", "compose.yml", "--profile", "spark", "config"], cwd=INFRA, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    return yaml.safe_load(done.stdout)


def test_master_and_worker_run_only_in_the_spark_profile(merged: dict) -> None:
    services = merged["services"]
    profiled = {name for name, svc in services.items() if svc.get("profiles")}
    assert profiled == {"spark-master", "spark-worker"}
    assert all(services[name]["profiles"] == ["spark"] for name in profiled)
    master, worker = services["spark-master"], services["spark-worker"]
    assert master["image"] == worker["image"] and master["image"].startswith("apache/spark:")
    assert master["command"][:2] == ["/opt/spark/bin/spark-class", "org.apache.spark.deploy.master.Master"]
    assert worker["command"][:3] == ["/opt/spark/bin/spark-class", "org.apache.spark.deploy.worker.Worker",
                                     "spark://spark-master:7077"]
    assert worker["depends_on"]["spark-master"]["condition"] == "service_healthy"


def test_the_driver_reaches_the_master_and_shares_the_data_folder(merged: dict) -> None:
    airflow = merged["services"]["airflow"]
    env = {k.removeprefix("MOVIEAUGUR_").lower(): str(v) for k, v in airflow["environment"].items()
           if k.startswith("MOVIEAUGUR_")}
    assert set(env) <= set(Settings.model_fields), "a MOVIEAUGUR_* variable that is no setting"
    settings = Settings(**env)
    assert settings.spark_master == "spark://spark-master:7077" and airflow["hostname"] == "airflow"
    mounts = {v.split(":")[0]: v.split(":")[1] for v in airflow["volumes"]}
    worker_mounts = {v.split(":")[0]: v.split(":")[1] for v in merged["services"]["spark-worker"]["volumes"]}
    data = mounts["airflow-models"]
    assert worker_mounts["airflow-models"] == data == str(settings.data_dir)
    for folder in (settings.snapshot_dir, settings.spark_work_dir):
        assert folder is not None and Path(data) in folder.parents


def test_the_image_matches_the_pyspark_the_spark_extra_installs(merged: dict) -> None:
    image = merged["services"]["spark-master"]["image"]
    major, minor = re.search(r":(\d+)\.(\d+)\.", image).groups()
    extra = re.search(r'spark = \[\s*"pyspark([^"]*)"', (REPO / "pyproject.toml").read_text()).group(1)
    assert f">={major}.{minor}" in extra and f"<{major}.{int(minor) + 1}" in extra, (image, extra)
