"""Where the local stack keeps its state, which ports and versions it uses.

Everything the stack downloads, builds, writes or logs lives under ONE folder (default `<repo>/.stack`,
git-ignored) so that `rm -rf .stack` is a complete reset and nothing touches /etc, /var or ~/.m2.
Every knob is an environment variable so that tests, CI and a developer's shell agree without flags.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

#: The repository root: infra/local/config.py -> parents[2].
REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA_DIR = REPO_ROOT / "infra"

#: Environment variables and their defaults. Non-default ports so that a developer's own Kafka/Redis/...
#: on the usual ports is never hit by accident.
ENV_DEFAULTS: dict[str, str] = {
    "MOVIEAUGUR_STACK_DIR": str(REPO_ROOT / ".stack"),
    # Where downloads and builds (Kafka jars, the Mongo sink, FerretDB) live; empty = the stack dir.
    # A second stack (the three-broker one the fault tests run) points here at the first one's, so it
    # starts in seconds instead of rebuilding FerretDB for two minutes.
    "MOVIEAUGUR_STACK_DOWNLOADS": "",
    # KRaft nodes (each a combined broker+controller). Broker n listens on KAFKA_PORT + 10*(n-1) and
    # KAFKA_CONTROLLER_PORT + 10*(n-1). Empty = what the stack dir was last brought up with, else 1.
    "MOVIEAUGUR_KAFKA_BROKERS": "",
    "MOVIEAUGUR_KAFKA_PORT": "19092",
    "MOVIEAUGUR_KAFKA_CONTROLLER_PORT": "19093",
    "MOVIEAUGUR_CONNECT_PORT": "18083",
    "MOVIEAUGUR_FERRETDB_PORT": "27018",
    # FerretDB's storage: `postgresql` (a PostgreSQL server of the stack's own, started before it) or
    # `sqlite` (files, no server; slow on big collections: no index use beyond single-_id lookups).
    "MOVIEAUGUR_FERRETDB_BACKEND": "postgresql",
    "MOVIEAUGUR_POSTGRES_PORT": "15432",
    # Account the PostgreSQL server runs as when the stack is started by root (postgres refuses root).
    "MOVIEAUGUR_POSTGRES_OS_USER": "postgres",
    # Extra server settings, `name=value` separated by spaces, after (so overriding) infra/local/postgres.py's.
    "MOVIEAUGUR_POSTGRES_SETTINGS": "",
    "MOVIEAUGUR_REDIS_PORT": "16379",
    "MOVIEAUGUR_GATEWAY_PORT": "18080",
    "MOVIEAUGUR_COMMAND_PORT": "18181",
    "MOVIEAUGUR_QUERY_PORT": "18182",
    "MOVIEAUGUR_KAFKA_VERSION": "4.4.0",
    "MOVIEAUGUR_MONGO_CONNECTOR_VERSION": "2.0.1",
    "MOVIEAUGUR_FERRETDB_VERSION": "v1.24.2",
    "MOVIEAUGUR_KAFKA_HEAP": "-Xms256m -Xmx512m",
    "MOVIEAUGUR_CONNECT_HEAP": "-Xms256m -Xmx512m",
    # Seconds each component may take to become ready (JVMs on 2 busy cores are slow).
    "MOVIEAUGUR_STACK_TIMEOUT": "180",
}

#: FerretDB's database in the stack's PostgreSQL cluster, and the (super)user it connects as.
POSTGRES_DATABASE = "ferretdb"
POSTGRES_ROLE = "postgres"
FERRETDB_BACKENDS = ("postgresql", "sqlite")


def env(name: str) -> str:
    """Read one knob, falling back to its documented default."""
    return os.environ.get(name) or ENV_DEFAULTS[name]


#: The broker count `stack up --brokers N` used, kept in the stack dir so `status`/`down` and
#: later `up`s agree with it without the flag.
BROKERS_FILE = "kafka-brokers"


def broker_count(root: Path) -> int:
    """MOVIEAUGUR_KAFKA_BROKERS, else the count this stack dir was brought up with, else 1."""
    text = env("MOVIEAUGUR_KAFKA_BROKERS").strip()
    if not text and (root / BROKERS_FILE).exists():
        text = (root / BROKERS_FILE).read_text().strip()
    count = int(text or "1")
    if count < 1:
        raise ValueError(f"MOVIEAUGUR_KAFKA_BROKERS={count}: at least one broker")
    return count


@dataclass(frozen=True)
class StackConfig:
    """A resolved snapshot of the environment: built once, passed to every component."""

    root: Path
    downloads: Path
    kafka_brokers: int
    kafka_port: int
    kafka_controller_port: int
    connect_port: int
    ferretdb_port: int
    ferretdb_backend: str
    postgres_port: int
    postgres_os_user: str
    postgres_settings: str
    redis_port: int
    gateway_port: int
    command_port: int
    query_port: int
    kafka_version: str
    mongo_connector_version: str
    ferretdb_version: str
    kafka_heap: str
    connect_heap: str
    timeout: float
    host: str = "127.0.0.1"
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> StackConfig:
        root = Path(env("MOVIEAUGUR_STACK_DIR")).resolve()
        return cls(
            root=root,
            downloads=Path(env("MOVIEAUGUR_STACK_DOWNLOADS") or root).resolve(),
            kafka_brokers=broker_count(root),
            kafka_port=int(env("MOVIEAUGUR_KAFKA_PORT")),
            kafka_controller_port=int(env("MOVIEAUGUR_KAFKA_CONTROLLER_PORT")),
            connect_port=int(env("MOVIEAUGUR_CONNECT_PORT")),
            ferretdb_port=int(env("MOVIEAUGUR_FERRETDB_PORT")),
            ferretdb_backend=env("MOVIEAUGUR_FERRETDB_BACKEND").strip().lower(),
            postgres_port=int(env("MOVIEAUGUR_POSTGRES_PORT")),
            postgres_os_user=env("MOVIEAUGUR_POSTGRES_OS_USER"),
            postgres_settings=env("MOVIEAUGUR_POSTGRES_SETTINGS").strip(),
            redis_port=int(env("MOVIEAUGUR_REDIS_PORT")),
            gateway_port=int(env("MOVIEAUGUR_GATEWAY_PORT")),
            command_port=int(env("MOVIEAUGUR_COMMAND_PORT")),
            query_port=int(env("MOVIEAUGUR_QUERY_PORT")),
            kafka_version=env("MOVIEAUGUR_KAFKA_VERSION"),
            mongo_connector_version=env("MOVIEAUGUR_MONGO_CONNECTOR_VERSION"),
            ferretdb_version=env("MOVIEAUGUR_FERRETDB_VERSION"),
            kafka_heap=env("MOVIEAUGUR_KAFKA_HEAP"),
            connect_heap=env("MOVIEAUGUR_CONNECT_HEAP"),
            timeout=float(env("MOVIEAUGUR_STACK_TIMEOUT")),
        )

    # Shared folders -------------------------------------------------------------------------------
    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        """pid files: one per process this tool started."""
        return self.root / "run"

    @property
    def maven_repo(self) -> Path:
        """A private Maven local repository, so ~/.m2 is neither needed nor modified."""
        return self.downloads / "m2"

    # Addresses ------------------------------------------------------------------------------------
    def broker_ports(self, node: int) -> tuple[int, int]:
        """(client port, controller port) of KRaft node `node` (1-based)."""
        return self.kafka_port + 10 * (node - 1), self.kafka_controller_port + 10 * (node - 1)

    @property
    def bootstrap_servers(self) -> str:
        """Every broker: a client that knows only a dead one could not find the others."""
        return ",".join(f"{self.host}:{self.broker_ports(n)[0]}" for n in range(1, self.kafka_brokers + 1))

    @property
    def connect_url(self) -> str:
        return f"http://{self.host}:{self.connect_port}"

    @property
    def mongo_url(self) -> str:
        # directConnection: FerretDB is a single server, never a replica set; without it a driver
        # that is handed a seed list may wait for a topology it will never see.
        return f"mongodb://{self.host}:{self.ferretdb_port}/?directConnection=true"

    @property
    def postgres_url(self) -> str:
        """FerretDB's PostgreSQL database (superuser `postgres`, trust auth on 127.0.0.1 only)."""
        return f"postgres://{POSTGRES_ROLE}@{self.host}:{self.postgres_port}/{POSTGRES_DATABASE}"

    @property
    def redis_url(self) -> str:
        return f"redis://{self.host}:{self.redis_port}/0"

    @property
    def gateway_url(self) -> str:
        return f"http://{self.host}:{self.gateway_port}"
