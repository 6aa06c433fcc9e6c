"""Local infrastructure without Docker: Kafka (KRaft), Kafka Connect + MongoDB sink, FerretDB on
PostgreSQL, Redis and the NGINX gateway, obtained from package registries and run from one folder (`.stack`).

    from infra.local import Stack
    stack = Stack(); stack.up(); stack.status(); stack.kafka.stop(); stack.kafka.start(); stack.down()

CLI: `python -m infra.local up|down|status` (mounted as `movieaugur stack`). Tests: infra.local.testing.
"""

from .component import Component, ComponentStatus
from .config import ENV_DEFAULTS, StackConfig
from .connect import ConnectWorker
from .ferretdb import FerretDB
from .kafka import KafkaBroker
from .nginx import NginxGateway
from .postgres import PostgresServer
from .proc import Reporter, StackError
from .redis_server import RedisServer
from .stack import Stack, StackAddresses

__all__ = [
    "Component", "ComponentStatus", "ConnectWorker", "ENV_DEFAULTS", "FerretDB", "KafkaBroker",
    "NginxGateway", "PostgresServer", "RedisServer", "Reporter", "Stack", "StackAddresses", "StackConfig", "StackError",
]
