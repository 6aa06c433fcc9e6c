"""Test helper: `ensure_stack()` brings the real stack up once and hands back addresses.

Idempotent and cheap when the stack already runs (each component just answers its probe), so every
test module may call it; the first call in a cold checkout downloads and builds (minutes).
"""

from __future__ import annotations

import os
from dataclasses import replace

from .config import StackConfig
from .proc import Reporter
from .stack import Stack

_STACK: Stack | None = None


def ensure_stack() -> Stack:
    """Return a running Stack (started if needed). Its addresses: `.bootstrap_servers`, `.connect_url`,
    `.mongo_url`, `.redis_url`, `.gateway_url` (or `.addresses` for all of them at once)."""
    global _STACK
    if _STACK is None:
        _STACK = Stack(report=Reporter(quiet=os.environ.get("MOVIEAUGUR_STACK_QUIET") == "1"))
    _STACK.up()
    return _STACK


def cluster_config(brokers: int = 3) -> StackConfig:
    """The fault tests' three-broker stack: the shared stack's settings moved to its own folder
    `<stack>/cluster<brokers>` (reusing the shared downloads) and its own ports (2xxxx where the shared
    stack has 1xxxx), so both run at once without touching each other. FerretDB on SQLite: the fault
    tests' collections are small, and a second PostgreSQL would buy nothing."""
    shared = StackConfig.from_env()
    return replace(shared, root=shared.root / f"cluster{brokers}", downloads=shared.downloads, kafka_brokers=brokers,
                   ferretdb_backend="sqlite", kafka_port=29092, kafka_controller_port=29093, connect_port=28083,
                   ferretdb_port=27028, redis_port=26379, gateway_port=28080, command_port=28181, query_port=28182,
                   postgres_port=25432)


def ensure_cluster_stack(brokers: int = 3) -> Stack:
    """The three-broker stack, started if needed (`stop it with .down()`)."""
    stack = Stack(cluster_config(brokers), report=Reporter(quiet=os.environ.get("MOVIEAUGUR_STACK_QUIET") == "1"))
    stack.up()
    return stack
