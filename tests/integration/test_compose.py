"""infra/compose.yml is validated without a Docker engine (there is none on these machines).

1. A real Compose implementation parses it: Debian's `docker-compose` (1.29, the Python one, which
   checks the file against the Compose specification schema and resolves anchors, interpolation
   and relative paths). scripts/setup.sh installs it for the "test" extra; a file it rejects fails the test.
2. On the resolved configuration: every build has its Dockerfile, every mounted file exists, every
   MOVIEAUGUR_* variable is a Settings field, the roles run distributed on the ports NGINX and the
   health checks use, the Connect pieces agree with each other and with infra/connect/*.json.
3. The NGINX config passes `nginx -t` (upstream host names rewritten, since `commands` does not
   resolve here) and routes exactly as the local gateway does.
None of this starts a container; docs/compose.md says what that leaves unproven.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from domain.configuration import weights_of
from kernel.settings import Settings
from movieaugur.adapters.connect_sinks import render_connector, sinks_of
from movieaugur.serve import port_for
from projections.registry import build_projections

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
COMPOSE = INFRA / "compose.yml"
NGINX_CONF = INFRA / "nginx" / "compose.conf"
GATEWAY_TEMPLATE = INFRA / "nginx" / "gateway.template.conf"
WORKER = INFRA / "connect" / "worker.compose.properties"
CONNECT_DOCKERFILE = INFRA / "connect" / "Dockerfile"
# The Connect sinks the projections declare (catalog, recommendations).
SINKS = sinks_of(build_projections(weights_of(Settings())).values())

BROKERS = ("kafka-1", "kafka-2", "kafka-3")
MONGO_URL = "mongodb://mongo-1:27017,mongo-2:27017,mongo-3:27017/?replicaSet=rs0"
SERVICES = {*BROKERS, "connect", "connect-setup", "mongo-1", "mongo-2", "mongo-3", "redis", "redis-replica",
            "commands", "queries", "projectors", "nginx", "airflow", "spark-master", "spark-worker"}
ROLES = {"commands", "queries", "projectors"}


def _require_tool(binary: str) -> str:
    """The tool's path; `bash scripts/setup.sh test` installs it (tests install nothing)."""
    found = shutil.which(binary)
    if not found:
        pytest.fail(f"{binary} is not on PATH: run `bash scripts/setup.sh test` (installs docker-compose and nginx)")
    return found


def _compose_env() -> dict[str, str]:
    # Only this file, no override file or project settings from the caller's shell.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_") and not k.startswith("MOVIEAUGUR_")}
    env["MOVIEAUGUR_API_KEYS"] = "key-one,key-two"  # proves the interpolation is wired through
    return env


@pytest.fixture(scope="module")
def resolved() -> dict:
    """`docker-compose config`: the file as Compose itself understands it (or the test fails)."""
    compose = _require_tool("docker-compose")
    done = subprocess.run([compose, "-f", str(COMPOSE), "config"], cwd=INFRA, env=_compose_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"docker-compose rejected {COMPOSE}:\n{done.stderr}"
    # Warnings (e.g. an unset variable interpolated as blank) would mean a silently wrong stack.
    assert "WARNING" not in done.stderr, done.stderr
    return yaml.safe_load(done.stdout)


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_parses_with_every_service(resolved: dict) -> None:
    assert set(resolved["services"]) == SERVICES
    assert {"kafka-1-data", "kafka-2-data", "kafka-3-data", "mongo-1-data", "redis-data"} <= set(resolved["volumes"])


def test_builds_have_their_dockerfiles(resolved: dict) -> None:
    built = {name: svc["build"] for name, svc in resolved["services"].items() if "build" in svc}
    assert ROLES | {"connect", "airflow"} <= set(built)
    for name, build in built.items():
        context = Path(build["context"])
        assert context.is_dir(), f"{name}: build context {context} missing"
        dockerfile = context / build.get("dockerfile", "Dockerfile")
        assert dockerfile.is_file(), f"{name}: {dockerfile} missing"
    # The three roles are one image: same context, same Dockerfile, same tag.
    assert len({(json.dumps(built[r], sort_keys=True), resolved["services"][r]["image"]) for r in ROLES}) == 1


def test_dockerfile_copies_every_package() -> None:
    """The image installs with `pip install .`: every package pyproject lists must be copied in."""
    pyproject = (REPO / "pyproject.toml").read_text()
    include = re.search(r"include\s*=\s*\[([^\]]*)\]", pyproject).group(1)
    packages = {p.strip().strip('"').rstrip("*") for p in include.split(",") if p.strip()}
    for dockerfile in (REPO / "Dockerfile", INFRA / "airflow" / "Dockerfile"):
        text = dockerfile.read_text()
        copied = set(re.findall(r"^COPY\s+(?:--\S+\s+)*(\w+)\s", text, re.M))
        assert packages <= copied, f"{dockerfile.name} misses {packages - copied}"
        assert "README.md" in text, "pyproject's readme is needed to build the wheel"
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".venv", ".stack", ".git", "tests"} <= set(ignored)
    assert not packages & set(ignored) and "README.md" not in ignored


def test_image_wheel_builds_from_exactly_the_copied_files(tmp_path: Path) -> None:
    """What the Dockerfile's `pip install .` sees, built here: only the COPYed paths."""
    sources = []
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            parts = [p for p in line.split()[1:] if not p.startswith("--")]
            sources += parts[:-1]
    context = tmp_path / "context"
    context.mkdir()
    for source in sources:
        src = REPO / source
        if src.is_dir():  # as .dockerignore: no bytecode caches
            shutil.copytree(src, context / source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, context / source)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
                           str(context)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    [wheel] = (tmp_path / "dist").glob("movieaugur-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(archive.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    assert "movieaugur = movieaugur.cli:main" in entry_points  # the image's ENTRYPOINT
    assert {"movieaugur/serve.py", "infra/nginx/compose.conf", "infra/connect/catalog-sink.json"} <= names


def test_mounted_files_exist(resolved: dict) -> None:
    for name, svc in resolved["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if not source.startswith("/"):
                assert source in resolved["volumes"], f"{name}: undeclared named volume {source}"
                continue
            path = Path(source)
            assert REPO in path.parents, f"{name}: mounts {path} from outside the repository"
            assert path.exists(), f"{name}: mounts {path}, which does not exist"


def _movieaugur_env(resolved: dict) -> dict[str, dict[str, str]]:
    return {name: {k: str(v) for k, v in (svc.get("environment") or {}).items() if k.startswith("MOVIEAUGUR_")}
            for name, svc in resolved["services"].items()}


def test_every_movieaugur_variable_is_a_setting(resolved: dict) -> None:
    """A typo'd variable would be ignored silently (extra="ignore"): catch it here."""
    fields = set(Settings.model_fields)
    used = {k for env in _movieaugur_env(resolved).values() for k in env}
    for path in (COMPOSE, REPO / "Dockerfile", INFRA / "airflow" / "Dockerfile"):
        used |= set(re.findall(r"\bMOVIEAUGUR_[A-Z0-9_]+", path.read_text()))
    unknown = {v for v in used if v.removeprefix("MOVIEAUGUR_").lower() not in fields}
    assert not unknown, f"not fields of kernel.settings.Settings: {sorted(unknown)}"


def test_roles_run_distributed_on_the_ports_nginx_uses(resolved: dict) -> None:
    services = resolved["services"]
    upstreams = dict(re.findall(r"server\s+(commands|queries):(\d+);", NGINX_CONF.read_text()))
    for role in ROLES | {"airflow"}:
        env = _movieaugur_env(resolved)[role]
        settings = Settings(**{k.removeprefix("MOVIEAUGUR_").lower(): v for k, v in env.items()})
        assert settings.mode == "distributed", role
        assert settings.kafka_bootstrap == ",".join(f"{b}:9092" for b in BROKERS)
        assert settings.redis_url.startswith("redis://redis:")
        assert settings.mongo_url == MONGO_URL
        assert settings.api_keys == ("key-one", "key-two"), "MOVIEAUGUR_API_KEYS not interpolated"
        for backend in (*BROKERS, "redis", "mongo-1"):
            assert services[role]["depends_on"][backend]["condition"] == "service_healthy", (role, backend)
        if role == "airflow":
            continue
        command = services[role]["command"]
        assert command[:3] == ["serve", "--role", role], command
        if role == "projectors":
            continue
        assert command[3:] == ["--host", "0.0.0.0"], "must listen beyond the container's loopback"
        port = port_for(settings, {role})
        assert upstreams[role] == str(port), f"nginx sends {role} to {upstreams[role]}, it listens on {port}"
        assert f":{port}/healthz" in " ".join(services[role]["healthcheck"]["test"])
        assert services["nginx"]["depends_on"][role]["condition"] == "service_healthy"
    assert services["nginx"]["ports"][0]["published"] in (8080, "8080")


def test_kafka_is_three_kraft_nodes_replicating_everything(resolved: dict) -> None:
    voters = ",".join(f"{n}@{b}:9093" for n, b in enumerate(BROKERS, 1))
    for node, broker in enumerate(BROKERS, 1):
        service = resolved["services"][broker]
        env = {k: str(v) for k, v in service["environment"].items()}
        assert service["image"] == resolved["services"]["kafka-1"]["image"]
        assert service["image"].startswith("apache/kafka:4.")
        assert env["KAFKA_NODE_ID"] == str(node)
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == voters
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{broker}:9092"
        assert [v.split(":")[0] for v in service["volumes"]] == [f"{broker}-data"]  # a volume of its own
        for key in ("OFFSETS_TOPIC_REPLICATION_FACTOR", "TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
                    "DEFAULT_REPLICATION_FACTOR", "SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR"):
            assert env[f"KAFKA_{key}"] == "3", key
        for key in ("TRANSACTION_STATE_LOG_MIN_ISR", "MIN_INSYNC_REPLICAS", "SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR"):
            assert env[f"KAFKA_{key}"] == "2", key
        assert env["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"] == "false"
        assert env["KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"] == "0"
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
        assert resolved["services"]["connect"]["depends_on"][broker]["condition"] == "service_healthy"
    # The Connect image must be built on the same Kafka.
    assert f"KAFKA_IMAGE={resolved['services']['kafka-1']['image']}" in CONNECT_DOCKERFILE.read_text()


def test_mongo_is_a_replica_set_and_redis_persists_with_a_replica(resolved: dict) -> None:
    services = resolved["services"]
    for member in ("mongo-1", "mongo-2", "mongo-3"):
        assert services[member]["command"] == ["mongod", "--replSet", "rs0", "--bind_ip_all"]
    initiate = " ".join(services["mongo-1"]["healthcheck"]["test"])
    assert all(f"host: '{m}:27017'" in initiate for m in ("mongo-1", "mongo-2", "mongo-3")) and "rs.initiate" in initiate
    for name in ("redis", "redis-replica"):
        command = services[name]["command"]
        assert command[command.index("--appendonly") + 1] == "yes", name
    replica = services["redis-replica"]["command"]
    assert replica[replica.index("--replicaof") + 1:][:2] == ["redis", "6379"]


def test_connect_worker_and_connectors_agree(resolved: dict) -> None:
    worker = dict(line.split("=", 1) for line in WORKER.read_text().splitlines() if line and not line.startswith("#"))
    assert worker["bootstrap.servers"] == ",".join(f"{b}:9092" for b in BROKERS)
    assert worker["plugin.discovery"] == "hybrid_warn"
    assert worker["listeners"].endswith(":8083")
    for kind in ("config", "offset", "status"):
        assert worker[f"{kind}.storage.replication.factor"] == "3"
    assert f"{worker['plugin.path']}/" in CONNECT_DOCKERFILE.read_text(), "jar not under plugin.path"

    env = _movieaugur_env(resolved)["commands"]
    prefix = env["MOVIEAUGUR_TOPIC_PREFIX"]
    for sink in SINKS:
        stem = sink.connector
        rendered = json.loads((INFRA / "connect" / "compose" / f"{stem}.json").read_text())
        # The committed copy is exactly the template rendered for this compose file.
        expected = render_connector(sink, prefix, MONGO_URL, env["MOVIEAUGUR_MONGO_DATABASE"])
        assert rendered == expected, f"infra/connect/compose/{stem}.json is stale: re-render it"
        assert rendered["key.converter"] == worker["key.converter"]
        assert rendered["value.converter"] == worker["value.converter"]
        # Registered under the name the services use to reset the sink on replay.
        assert sink.connector_name(prefix) == f"movieaugur.{stem}"
    assert env["MOVIEAUGUR_CONNECT_URL"] == "http://connect:8083"


def test_connect_setup_script_puts_both_connectors(resolved: dict, tmp_path: Path) -> None:
    """Run the one-shot's shell script here with a stand-in `curl` that records its arguments."""
    setup = resolved["services"]["connect-setup"]
    assert setup["entrypoint"] == ["/bin/sh", "-c"] and len(setup["command"]) == 1
    # `config` output keeps Compose's `$$` escape; the container's shell gets a single `$`.
    script = setup["command"][0].replace("$$", "$")
    fake = tmp_path / "curl"
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$*" >> "$CALLS"\n')
    fake.chmod(0o755)
    calls = tmp_path / "calls"
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "CALLS": str(calls)}
    done = subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    lines = calls.read_text().splitlines()
    prefix = _movieaugur_env(resolved)["commands"]["MOVIEAUGUR_TOPIC_PREFIX"]
    mount = next(v for v in setup["volumes"] if v.endswith(":/connectors:ro"))
    assert Path(mount.split(":")[0]) == INFRA / "connect" / "compose"
    expected = [f"-X PUT -H Content-Type: application/json --data @/connectors/{sink.connector}.json "
                f"http://connect:8083/connectors/{sink.connector_name(prefix)}/config"
                for sink in SINKS]
    assert len(lines) == len(expected)
    for line, want in zip(lines, expected, strict=True):
        assert line.startswith("-fsS --retry") and line.endswith(want), line
    deps = setup["depends_on"]
    assert deps["connect"]["condition"] == deps["commands"]["condition"] == "service_healthy"


def test_connect_healthcheck_is_valid_bash(resolved: dict) -> None:
    test = resolved["services"]["connect"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "bash", "-c"]
    script = test[3].replace("$$", "$")
    done = subprocess.run(["bash", "-n", "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "/dev/tcp/127.0.0.1/8083" in script and "MongoSinkConnector" in script


def _map_block(text: str) -> list[str]:
    block = re.search(r'map "\$request_method:\$uri".*?\}', text, re.S).group(0)
    return [" ".join(line.split()) for line in block.splitlines()]


def test_nginx_routes_and_caches_like_the_local_gateway() -> None:
    conf = NGINX_CONF.read_text()
    template = GATEWAY_TEMPLATE.read_text().replace("$$", "$")
    assert _map_block(conf) == _map_block(template), "write/read routing differs from gateway.template.conf"
    for directive in ("proxy_cache_valid 200 5s;", "proxy_cache_lock on;", "proxy_cache_use_stale updating;",
                      "add_header X-Cache-Status $upstream_cache_status always;", "limit_req zone=movieaugur_writes",
                      "limit_req_status 429;", "client_max_body_size 16m;", "listen 80;",
                      "proxy_cache_bypass $movieaugur_no_cache;", "proxy_no_cache $movieaugur_no_cache;"):
        assert directive in conf, directive


def test_nginx_accepts_the_config(tmp_path: Path) -> None:
    nginx = _require_tool("nginx")
    conf = NGINX_CONF.read_text()
    # Compose host names do not resolve here, and the container's absolute paths are not ours.
    conf = conf.replace("server commands:", "server 127.0.0.1:").replace("server queries:", "server 127.0.0.1:")
    conf = conf.replace("/var/cache/nginx/", f"{tmp_path}/cache/").replace("/var/run/nginx.pid", f"{tmp_path}/nginx.pid")
    assert "commands:" not in conf and "queries:" not in conf
    (tmp_path / "cache").mkdir()  # the image has /var/cache/nginx; nginx creates only the last level
    (tmp_path / "nginx.conf").write_text(conf)
    done = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"),
                           "-c", str(tmp_path / "nginx.conf")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"nginx -t failed:\n{done.stderr}"
    assert "syntax is ok" in done.stderr
