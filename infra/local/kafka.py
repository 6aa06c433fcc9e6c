"""Kafka 4.x KRaft nodes in combined mode (broker and controller in one JVM), run from Maven Central
jars (no tarball): one node by default, three with `stack up --brokers 3`.

Combined rather than separate controllers: on one 2-core machine three extra controller JVMs would
double the memory and start-up time for no gain in what the tests can show (a killed node takes its
controller with it either way, and three voters survive one loss). Production separates them
(docs/operations.md).

Tests stop and restart brokers (to see writes fail with 503 and recover), so the data folders and the
cluster id survive `stop()`; a node is only formatted when its data folder has no meta.properties.
"""

from __future__ import annotations

import base64
import os
import shutil
import uuid
from pathlib import Path
from string import Template

from ..replication import replication_for
from .component import Component
from .config import INFRA_DIR, StackConfig
from .fetch import ensure_kafka_lib, kafka_lib_dir, obtain_log
from .probes import probe_kafka
from .proc import Reporter, StackError, run_logged

#: Flags shared by both JVMs: small heaps, and few GC/JIT threads because the machine has 2 cores
#: and runs the services and tests beside them.
JVM_COMMON = [
    "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:ParallelGCThreads=1", "-XX:ConcGCThreads=1",
    "-XX:CICompilerCount=2", "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
    "-Dfile.encoding=UTF-8",
]


def java_binary() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if not found:
        raise StackError("java not found: a JDK/JRE 17+ is needed for Kafka 4.x")
    return found


def kafka_uuid() -> str:
    """A cluster id in Kafka's format (URL-safe base64 of 16 random bytes, no padding), made here
    instead of starting a JVM just for `StorageTool random-uuid`."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):  # Kafka avoids ids that look like a command-line flag
            return text


def java_command(lib: Path, heap: str, logs_dir: Path, main: str, *args: str) -> list[str]:
    """`java -cp '<lib>/*' <main>` with our logging config; used for broker, storage tool and Connect."""
    return [java_binary(), *heap.split(), *JVM_COMMON,
            f"-Dlog4j2.configurationFile={INFRA_DIR / 'kafka' / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={logs_dir}", "-cp", f"{lib}/*", main, *args]


class KafkaBroker(Component):
    """One combined broker+controller (`process.roles=broker,controller`, node.id `node`). Node 1 is
    named `kafka` (its folder and pid file as before clusters existed), node n `kafka-n`."""

    name = "kafka"
    env_port = "MOVIEAUGUR_KAFKA_PORT"
    ready_means = "a metadata request listing a broker (the controller quorum has a leader)"

    def __init__(self, cfg: StackConfig, report: Reporter | None = None, node: int = 1) -> None:
        self.node = node
        self.name = "kafka" if node == 1 else f"kafka-{node}"
        super().__init__(cfg, report)

    @property
    def port(self) -> int:
        return self.cfg.broker_ports(self.node)[0]

    @property
    def controller_port(self) -> int:
        return self.cfg.broker_ports(self.node)[1]

    @property
    def bootstrap_servers(self) -> str:
        return self.cfg.bootstrap_servers

    @property
    def cluster_id_file(self) -> Path:
        """Shared by every node of the stack: they must be formatted with one cluster id."""
        return self.cfg.root / "kafka" / "cluster.id"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def properties_file(self) -> Path:
        return self.home / "server.properties"

    def obtain(self) -> None:
        ensure_kafka_lib(self.cfg, self.report)

    def render_properties(self) -> str:
        template = Template((INFRA_DIR / "kafka" / "server.template.properties").read_text())
        voters = ",".join(f"{n}@{self.cfg.host}:{self.cfg.broker_ports(n)[1]}" for n in range(1, self.cfg.kafka_brokers + 1))
        replication, min_isr = replication_for(self.cfg.kafka_brokers)
        return template.substitute(host=self.cfg.host, port=self.port, controller_port=self.controller_port,
                                   data_dir=self.data_dir, node_id=self.node, voters=voters,
                                   replication=replication, min_isr=min_isr)

    def prepare(self) -> None:
        self._home()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.properties_file.write_text(self.render_properties())
        if (self.data_dir / "meta.properties").exists():
            return  # formatted before: keep the log (broker restarts keep their data)
        cluster_id_file = self.cluster_id_file
        cluster_id_file.parent.mkdir(parents=True, exist_ok=True)
        if not cluster_id_file.exists():
            cluster_id_file.write_text(kafka_uuid() + "\n")
        cluster_id = cluster_id_file.read_text().strip()
        self.report(f"{self.name}: formatting storage {self.data_dir} (cluster id {cluster_id})")
        run_logged(java_command(kafka_lib_dir(self.cfg), "-Xmx256m", self.cfg.logs, "kafka.tools.StorageTool",
                                "format", "-t", cluster_id, "-c", str(self.properties_file),
                                "--ignore-formatted"),
                   self.cfg.logs / f"{self.name}-storage.log", timeout=180)

    def command(self) -> list[str]:
        if not any(kafka_lib_dir(self.cfg).glob("kafka_2.13-*.jar")):
            raise StackError(f"no Kafka jars in {kafka_lib_dir(self.cfg)}; see {obtain_log(self.cfg)}")
        return java_command(kafka_lib_dir(self.cfg), self.cfg.kafka_heap, self.cfg.logs, "kafka.Kafka",
                            str(self.properties_file))

    def probe(self) -> str | None:
        return probe_kafka(self.cfg.host, self.port)
