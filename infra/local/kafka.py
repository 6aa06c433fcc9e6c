"""A single-node Kafka 4.x in KRaft combined mode, run from Maven Central jars (no tarball).

Tests stop and restart only the broker (to see writes fail with 503 and recover), so the data folder
and the cluster id survive `stop()`; a fresh cluster is only formatted when no meta.properties exists.
"""

from __future__ import annotations

import base64
import os
import shutil
import uuid
from pathlib import Path
from string import Template

from .component import Component
from .config import INFRA_DIR
from .fetch import ensure_kafka_lib, kafka_lib_dir, obtain_log
from .probes import probe_kafka
from .proc import StackError, run_logged

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
    """Combined broker+controller (`process.roles=broker,controller`, node.id 1)."""

    name = "kafka"
    env_port = "MOVIEAUGUR_KAFKA_PORT"
    ready_means = "a metadata request listing the broker"

    @property
    def port(self) -> int:
        return self.cfg.kafka_port

    @property
    def bootstrap_servers(self) -> str:
        return self.cfg.bootstrap_servers

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
        return template.substitute(host=self.cfg.host, port=self.cfg.kafka_port,
                                   controller_port=self.cfg.kafka_controller_port, data_dir=self.data_dir)

    def prepare(self) -> None:
        self._home()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.properties_file.write_text(self.render_properties())
        if (self.data_dir / "meta.properties").exists():
            return  # formatted before: keep the log (broker restarts keep their data)
        cluster_id_file = self.home / "cluster.id"
        if not cluster_id_file.exists():
            cluster_id_file.write_text(kafka_uuid() + "\n")
        cluster_id = cluster_id_file.read_text().strip()
        self.report(f"kafka: formatting storage {self.data_dir} (cluster id {cluster_id})")
        run_logged(java_command(kafka_lib_dir(self.cfg), "-Xmx256m", self.cfg.logs, "kafka.tools.StorageTool",
                                "format", "-t", cluster_id, "-c", str(self.properties_file),
                                "--ignore-formatted"),
                   self.cfg.logs / "kafka-storage.log", timeout=180)

    def command(self) -> list[str]:
        if not any(kafka_lib_dir(self.cfg).glob("kafka_2.13-*.jar")):
            raise StackError(f"no Kafka jars in {kafka_lib_dir(self.cfg)}; see {obtain_log(self.cfg)}")
        return java_command(kafka_lib_dir(self.cfg), self.cfg.kafka_heap, self.cfg.logs, "kafka.Kafka",
                            str(self.properties_file))

    def probe(self) -> str | None:
        return probe_kafka(self.cfg.host, self.cfg.kafka_port)
