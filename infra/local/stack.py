"""The whole local stack: start in dependency order, stop in reverse, report.

Order matters for Connect (needs Kafka) and FerretDB (needs PostgreSQL, its default backend); the
rest are independent, but starting them one after another keeps the 2-core machine from running
three JVM/Go start-ups at once and makes the progress lines readable. Obtaining (downloads/builds)
happens up front so a missing tool fails before anything is started.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .component import Component, ComponentStatus
from .config import BROKERS_FILE, StackConfig
from .connect import ConnectWorker
from .ferretdb import FerretDB
from .kafka import KafkaBroker
from .nginx import NginxGateway
from .postgres import PostgresServer
from .proc import Reporter
from .redis_server import RedisServer


@dataclass(frozen=True)
class StackAddresses:
    """What clients need, as plain strings (for tests and for services' settings)."""

    bootstrap_servers: str
    connect_url: str
    mongo_url: str
    redis_url: str
    gateway_url: str
    command_port: int
    query_port: int
    postgres_url: str  # FerretDB's storage (when its backend is postgresql)


class Stack:
    def __init__(self, cfg: StackConfig | None = None, report: Reporter | None = None) -> None:
        self.cfg = cfg or StackConfig.from_env()
        self.report = report or Reporter()
        self.brokers = [KafkaBroker(self.cfg, self.report, node) for node in range(1, self.cfg.kafka_brokers + 1)]
        self.kafka = self.brokers[0]
        self.postgres = PostgresServer(self.cfg, self.report)
        self.ferretdb = FerretDB(self.cfg, self.report)
        self.redis = RedisServer(self.cfg, self.report)
        self.nginx = NginxGateway(self.cfg, self.report)
        self.connect = ConnectWorker(self.cfg, self.report)

    @property
    def components(self) -> list[Component]:
        """Start order. PostgreSQL before FerretDB (its storage), and only with that backend;
        Connect last: it needs Kafka, and its start-up is the slowest."""
        storage: list[Component] = [self.postgres] if self.ferretdb.backend == "postgresql" else []
        return [*self.brokers, *storage, self.ferretdb, self.redis, self.nginx, self.connect]

    # Addresses -------------------------------------------------------------------------------------
    @property
    def addresses(self) -> StackAddresses:
        c = self.cfg
        return StackAddresses(c.bootstrap_servers, c.connect_url, c.mongo_url, c.redis_url, c.gateway_url,
                              c.command_port, c.query_port, c.postgres_url)

    @property
    def bootstrap_servers(self) -> str:
        return self.cfg.bootstrap_servers

    @property
    def connect_url(self) -> str:
        return self.cfg.connect_url

    @property
    def mongo_url(self) -> str:
        return self.cfg.mongo_url

    @property
    def postgres_url(self) -> str:
        return self.cfg.postgres_url

    @property
    def redis_url(self) -> str:
        return self.cfg.redis_url

    @property
    def gateway_url(self) -> str:
        return self.cfg.gateway_url

    # Life cycle ------------------------------------------------------------------------------------
    def obtain(self) -> float:
        """Download/build everything missing (first run: minutes). Returns seconds spent."""
        t0 = time.monotonic()
        for component in self.components:
            component.obtain()
        return time.monotonic() - t0

    def up(self) -> float:
        """Idempotent: obtains what is missing, starts what is not running, waits for readiness."""
        t0 = time.monotonic()
        self.cfg.root.mkdir(parents=True, exist_ok=True)
        self.report(f"stack dir {self.cfg.root}")
        self.obtain()
        (self.cfg.root / BROKERS_FILE).write_text(f"{self.cfg.kafka_brokers}\n")
        for broker in self.brokers:  # a quorum of several nodes elects a leader only once most are up
            broker.launch()
        for component in self.components:
            component.start()
        took = time.monotonic() - t0
        self.report(f"stack up in {took:.1f}s")
        return took

    def down(self) -> float:
        """Stop every process this stack started (reverse order). Data and downloads stay."""
        t0 = time.monotonic()
        everything: list[Component] = [self.postgres, self.ferretdb, self.redis, self.nginx, self.connect]
        # All of them, whatever the backend now: a PostgreSQL started under the other setting is stopped too.
        stopped = [c.name for c in reversed(everything) if c.stop()]
        # Brokers all at once: one left alone has lost its quorum, and its shutdown would wait for a
        # controller until the stop's grace runs out.
        with ThreadPoolExecutor(len(self.brokers)) as pool:
            stopped += [b.name for b, done in zip(self.brokers, pool.map(Component.stop, self.brokers), strict=True) if done]
        took = time.monotonic() - t0
        self.report(f"stack down in {took:.1f}s ({', '.join(stopped) if stopped else 'nothing was running'})")
        return took

    def status(self) -> list[ComponentStatus]:
        return [c.status() for c in self.components]

    def healthy(self) -> bool:
        return all(s.healthy for s in self.status())
