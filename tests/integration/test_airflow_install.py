"""Proves the Airflow toolchain end to end: install script, metadata DB, DAG parsing, a run.

The real DAGs come later; this test only guarantees that whatever they are, the venv that
infra/airflow/install.sh builds can migrate its database, parse a TaskFlow DAG folder that
imports our own code (offline.ingest.tmdb), and run it in-process with ``dag.test()``. Nothing is
skipped: an install failure is a test failure, because CI must prove the install works.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "infra" / "airflow" / "install.sh"

PROBE_DAG = textwrap.dedent(
    '''
    """Two-task TaskFlow DAG: map a TMDB movie with our own code, then check the result."""
    import pendulum
    from airflow.sdk import dag, task


    @dag(dag_id="toolchain_probe", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False)
    def toolchain_probe():
        @task
        def map_one() -> dict:
            from offline.ingest.tmdb.mapping import map_details

            entry = map_details("movie", {"id": 7, "title": "Probe", "overview": "x",
                                          "genres": [{"id": 18, "name": "Drama"}]})
            return entry

        @task
        def check(entry: dict) -> str:
            assert entry["item_id"] == "7" and entry["categories"] == ["Drama"], entry
            return entry["title"]

        check(map_one())


    toolchain_probe()
    '''
)

CHECK = textwrap.dedent(
    '''
    import json, sys, time
    from airflow.dag_processing.dagbag import DagBag

    t0 = time.monotonic()
    bag = DagBag(dag_folder=sys.argv[1])
    parsed = time.monotonic() - t0
    out = {"import_errors": {k: str(v) for k, v in bag.import_errors.items()},
           "dag_ids": sorted(bag.dag_ids), "parse_s": round(parsed, 2)}
    if not out["import_errors"]:
        t1 = time.monotonic()
        run = bag.dags["toolchain_probe"].test()
        out["state"] = str(getattr(run.state, "value", run.state))
        out["test_s"] = round(time.monotonic() - t1, 2)
    print("RESULT " + json.dumps(out))
    '''
)


def _venv() -> Path:
    return Path(os.environ.get("MOVIEAUGUR_AIRFLOW_VENV", REPO / ".stack" / "airflow-venv"))


def _airflow_env(home: Path, dags: Path) -> dict[str, str]:
    """A clean environment: nothing of the test's own venv may leak into Airflow's."""
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"}}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
    )
    return env


def _run(cmd: list[str], env: dict[str, str] | None, cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}\nSTDOUT:\n{proc.stdout[-6000:]}\nSTDERR:\n{proc.stderr[-6000:]}"
    return proc


def test_airflow_install_migrate_parse_and_run(tmp_path: Path) -> None:
    timings: dict[str, float] = {}

    t = time.monotonic()
    _run(["bash", str(INSTALL)], None, REPO, timeout=1800)
    timings["install"] = time.monotonic() - t

    venv = _venv()
    home, dags = tmp_path / "airflow_home", tmp_path / "dags"
    home.mkdir()
    dags.mkdir()
    (dags / "toolchain_probe.py").write_text(PROBE_DAG)
    (tmp_path / "check.py").write_text(CHECK)
    env = _airflow_env(home, dags)

    t = time.monotonic()
    _run([str(venv / "bin" / "airflow"), "db", "migrate"], env, tmp_path, timeout=600)
    timings["db_migrate"] = time.monotonic() - t

    t = time.monotonic()
    proc = _run([str(venv / "bin" / "python"), str(tmp_path / "check.py"), str(dags)], env, tmp_path, timeout=600)
    timings["parse_and_test"] = time.monotonic() - t

    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert line is not None, proc.stdout[-4000:] + proc.stderr[-4000:]
    result = json.loads(line.removeprefix("RESULT "))
    assert result["import_errors"] == {}, result["import_errors"]
    assert result["dag_ids"] == ["toolchain_probe"]
    assert result["state"] == "success", proc.stdout[-4000:] + proc.stderr[-4000:]
    print(f"timings: {json.dumps({k: round(v, 1) for k, v in timings.items()})} in-process: {result}", file=sys.stderr)
