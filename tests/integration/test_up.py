"""`movieaugur up | status | down --services-only` from the installed console script, on the shared
local stack: the whole system starts with one command, serves through NGINX, is reported by
`status --json`, is left alone by a second `up`, and its services stop without leaving a process.

The run has its own topic prefix, MongoDB database and data dir, so it neither sees nor disturbs
other tests' data; it stops only the services (`down --services-only`): the stack is shared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.local import Stack
from infra.local.proc import pid_alive
from movieaugur.system import ROLES, System, service_pids
from tests.integration.services import Services, http, wait_for

pytestmark = [pytest.mark.stack, pytest.mark.slow]

EXECUTABLE = str(Path(sys.executable).with_name("movieaugur"))  # this venv's, not whatever is on PATH


@dataclass
class Up:
    env: dict[str, str]
    stack: Stack
    run: str
    pids: dict[str, int | None]
    first_up_seconds: float

    def cli(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        return subprocess.run([EXECUTABLE, *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False)

    @property
    def gateway(self) -> str:
        return self.stack.gateway_url


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    if System().stopped() != [f"movieaugur-{role}" for role in ROLES]:
        pytest.fail("MovieAugur services already run on this stack (a `movieaugur up`); this test would stop them: "
                    "run `movieaugur down --services-only` first")
    run = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "MOVIEAUGUR_TOPIC_PREFIX": f"up{run}.",
        "MOVIEAUGUR_MONGO_DATABASE": f"up{run}",
        "MOVIEAUGUR_DATA_DIR": str(tmp_path_factory.mktemp("up") / "state"),
    }
    stack = Stack()
    started = time.monotonic()
    up = Up(env, stack, run, {}, 0.0)
    try:
        result = up.cli("up")
        up.first_up_seconds = time.monotonic() - started
        assert result.returncode == 0, f"`movieaugur up` failed:\n{result.stdout}\n{result.stderr}"
        up.pids = service_pids(stack.cfg.root)
        yield up
    finally:
        up.cli("down", "--services-only", timeout=120)
        # This run's Connect sinks, Redis keys and MongoDB database (the helper the other stack tests use).
        addresses = {"MOVIEAUGUR_REDIS_URL": stack.redis_url, "MOVIEAUGUR_MONGO_URL": stack.mongo_url}
        Services(stack, {**env, **addresses}, Path(env["MOVIEAUGUR_DATA_DIR"]), run).cleanup()


def test_up_starts_three_services_with_pid_files_and_prints_their_addresses(system: Up) -> None:
    print(f"first `movieaugur up` (stack already running or not): {system.first_up_seconds:.1f}s")
    assert all(pid is not None and pid_alive(pid) for pid in system.pids.values()), system.pids
    for role in ROLES:
        assert (system.stack.cfg.logs / f"movieaugur-{role}.log").is_file()
    status, _, body = http("GET", f"{system.gateway}/readyz")
    assert status == 200, body


def test_up_again_leaves_the_running_system_alone(system: Up) -> None:
    started = time.monotonic()
    result = system.cli("up")
    print(f"warm `movieaugur up`: {time.monotonic() - started:.1f}s")
    assert result.returncode == 0, result.stderr
    assert service_pids(system.stack.cfg.root) == system.pids
    for role in ROLES:
        assert f"movieaugur-{role}: already running (pid {system.pids[role]})" in result.stderr
    assert f"http://127.0.0.1:{system.stack.cfg.command_port}" in result.stdout
    assert f"http://127.0.0.1:{system.stack.cfg.query_port}" in result.stdout


def test_an_event_posted_through_nginx_shows_in_history_through_nginx(system: Up) -> None:
    user, item = f"up-user-{system.run}", f"up-film-{system.run}"
    event = {"event_id": f"up-{system.run}", "user_id": user, "item_id": item, "item_type": "movie",
             "action": "like", "timestamp": int(time.time()) - 5}
    status, _, body = http("POST", f"{system.gateway}/v1/events", [event], timeout=60)
    assert status == 200 and body["appended"] == 1, body

    def in_history() -> bool:
        code, _, listed = http("GET", f"{system.gateway}/v1/users/{user}/history")
        return code == 200 and any(entry["id"] == item for entry in listed["items"])

    wait_for(in_history, timeout=90, what="the event in the user's history through NGINX")


def test_status_json_lists_the_services_healthy_with_their_pids(system: Up) -> None:
    result = system.cli("status", "--json", timeout=120)
    report = json.loads(result.stdout)
    services = {s["role"]: s for s in report["services"]}
    assert set(services) == set(ROLES)
    for role, service in services.items():
        assert service["healthy"] and service["pid"] == system.pids[role], service
    assert services["commands"]["address"].endswith(f":{system.stack.cfg.command_port}")
    assert services["queries"]["address"].endswith(f":{system.stack.cfg.query_port}")
    assert {c["name"] for c in report["components"]} >= {"kafka", "ferretdb", "redis", "nginx", "connect"}
    assert result.returncode == (0 if report["healthy"] else 1)
    assert report["healthy"], result.stdout


def test_down_services_only_stops_every_service_and_keeps_the_stack(system: Up) -> None:
    result = system.cli("down", "--services-only", timeout=120)
    assert result.returncode == 0, result.stderr
    for role, pid in system.pids.items():
        assert pid is not None and not pid_alive(pid), f"{role} (pid {pid}) still running after down"
        assert not (system.stack.cfg.run / f"movieaugur-{role}.pid").exists()
    assert system.stack.healthy(), "down --services-only must leave the shared stack running"
    after = system.cli("status", "--json", timeout=120)
    assert after.returncode == 1
    assert not any(s["healthy"] or s["pid"] for s in json.loads(after.stdout)["services"])


def test_command_workers_share_the_port_and_down_stops_every_one(system: Up) -> None:
    """`up --command-workers 2`: two command processes answer on the one command port (the kernel
    spreads new connections among them), writes through NGINX are served, `down` stops both."""
    result = system.cli("up", "--command-workers", "2")
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    report = json.loads(system.cli("status", "--json", timeout=120).stdout)
    workers = {s["name"]: s["pid"] for s in report["services"] if s["role"] == "commands"}
    assert set(workers) == {"movieaugur-commands", "movieaugur-commands-2"}, report["services"]
    assert all(pid is not None and pid_alive(pid) for pid in workers.values()), workers
    assert len(set(workers.values())) == 2
    answered: set[int] = set()
    url = f"http://127.0.0.1:{system.stack.cfg.command_port}/healthz"
    for _ in range(200):  # a fresh connection each: the kernel picks a worker per connection
        status, _, body = http("GET", url)
        assert status == 200 and body["roles"] == ["commands"], body
        answered.add(body["pid"])
        if answered == set(workers.values()):
            break
    assert answered == set(workers.values()), f"only {answered} of {workers} answered 200 fresh connections"
    run = uuid.uuid4().hex[:8]
    for index in range(4):
        events = [{"event_id": f"workers-{run}-{index}-{i}", "user_id": f"w{i}", "item_id": "m1", "item_type": "movie",
                   "action": "view"} for i in range(50)]
        status, _, body = http("POST", f"{system.gateway}/v1/events", events, timeout=60)
        assert status == 200 and body["appended"] == 50, body
    result = system.cli("down", "--services-only", timeout=120)
    assert result.returncode == 0, result.stderr
    for name, pid in workers.items():
        assert not pid_alive(pid), f"{name} (pid {pid}) still running after down"
        assert not (system.stack.cfg.run / f"{name}.pid").exists()
