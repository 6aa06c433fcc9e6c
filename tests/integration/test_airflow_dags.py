"""The project's DAGs under real Airflow 3 (its own venv, built by infra/airflow/install.sh): they
load without import errors, carry retries and timeouts, and train_recommendations' dag.test() runs
against the real local stack, after which its recommendations are served through NGINX."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest

from tests.integration.services import Services, http, start_services, wait_for
from tests.integration.test_airflow_install import INSTALL, REPO, _airflow_env, _run, _venv

DAGS = REPO / "dags"
EXPECTED = {"collect_metadata", "collect_popularity", "import_interactions", "train_recommendations"}

INSPECT = textwrap.dedent(
    '''
    import json, sys
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=sys.argv[1])
    out = {"import_errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": {}}
    for dag_id, dag in bag.dags.items():
        out["dags"][dag_id] = {
            "schedule": str(getattr(dag, "schedule", None)),
            "tasks": {t.task_id: {"retries": t.retries, "timeout": t.execution_timeout.total_seconds() if t.execution_timeout else None}
                      for t in dag.tasks},
            "params": sorted(dag.params.keys()) if dag.params else [],
        }
    if len(sys.argv) > 2:
        run = bag.dags[sys.argv[2]].test()
        out["state"] = str(getattr(run.state, "value", run.state))
    print("RESULT " + json.dumps(out))
    '''
)


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    _run(["bash", str(INSTALL)], None, REPO, timeout=1800)
    home = tmp_path_factory.mktemp("airflow_home")
    script = home / "dagbag_probe.py"
    script.write_text(INSPECT)
    _run([str(_venv() / "bin" / "airflow"), "db", "migrate"], _airflow_env(home, DAGS), home, timeout=600)
    return home, script


def _inspect(airflow: tuple[Path, Path], env_extra: dict[str, str] | None = None, test_dag: str | None = None) -> dict:
    home, script = airflow
    env = {**_airflow_env(home, DAGS), **(env_extra or {})}
    args = [str(_venv() / "bin" / "python"), str(script), str(DAGS)] + ([test_dag] if test_dag else [])
    proc = _run(args, env, home, timeout=1200)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert line is not None, proc.stdout[-4000:] + proc.stderr[-4000:]
    return json.loads(line.removeprefix("RESULT "))


def test_every_dag_loads_with_retries_and_timeouts(airflow) -> None:  # type: ignore[no-untyped-def]
    result = _inspect(airflow)
    assert result["import_errors"] == {}
    assert set(result["dags"]) == EXPECTED
    for dag_id, dag in result["dags"].items():
        for task_id, task in dag["tasks"].items():
            assert task["retries"] >= 1, (dag_id, task_id)
            assert task["timeout"], (dag_id, task_id)
    assert result["dags"]["import_interactions"]["params"] == ["path"]
    assert result["dags"]["train_recommendations"]["schedule"] == "0 3 * * *"  # after the 01:00 collectors
    assert result["dags"]["collect_metadata"]["schedule"] == "0 1 * * *"
    assert result["dags"]["import_interactions"]["schedule"] == "None"


@pytest.mark.stack
def test_train_dag_publishes_recommendations_served_through_nginx(airflow, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    services: Services = start_services(tmp_path)
    try:
        services.start("commands")
        services.start("queries")
        services.start("projectors")
        gateway = services.stack.gateway_url
        now = int(time.time()) - 60
        batch = [
            {"user_id": f"af{user}", "item_id": f"a{user % 4}-{(item + user) % 14}", "object_type": "movie", "timestamp": now}
            for user in range(80) for item in range(10)
        ]
        assert http("POST", f"{gateway}/events", batch)[0] == 200
        env = {k: v for k, v in services.env.items() if k.startswith("MOVIEAUGUR_")}
        env["MOVIEAUGUR_TRAIN_TIME_BUDGET_SECONDS"] = "5"
        result = _inspect(airflow, env, test_dag="train_recommendations")
        assert result["state"] == "success", result

        attempts = iter(range(1, 10_000))

        def served() -> tuple | None:
            code, headers, items = http("GET", f"{gateway}/recommendations/default/users/af0?limit={next(attempts)}")
            return (headers, items) if code == 200 and "X-Recommendation-Fallback" not in headers else None

        headers, _ = wait_for(served, timeout=180, what="recommendations trained under Airflow, served through NGINX")
        model = http("GET", f"{gateway}/v1/models/default")[2]
        assert model["model_version"] == headers["X-Model-Version"]
        assert model["metrics"]["holdout"]["ndcg@100"] > model["metrics"]["popularity"]["ndcg@100"]
    finally:
        services.cleanup()
