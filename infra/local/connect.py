"""A Kafka Connect distributed worker with the MongoDB sink in its own plugin folder.

Distributed (not standalone) because production registers connectors over REST and keeps their
state in Kafka; the local stack should exercise the same path. It needs the broker up first.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from string import Template

from ..replication import replication_for
from .component import Component
from .config import INFRA_DIR
from .fetch import MONGO_SINK_CLASS, ensure_kafka_lib, ensure_mongo_sink, kafka_lib_dir, plugin_root
from .kafka import java_command
from .probes import http_get, probe_connect, probe_kafka
from .proc import StackError


class ConnectWorker(Component):
    name = "connect"
    env_port = "MOVIEAUGUR_CONNECT_PORT"
    ready_means = "REST GET / = 200 and the Mongo sink among /connector-plugins"

    @property
    def port(self) -> int:
        return self.cfg.connect_port

    @property
    def url(self) -> str:
        return self.cfg.connect_url

    @property
    def address(self) -> str:
        return self.url

    @property
    def properties_file(self):
        return self.home / "worker.properties"

    def obtain(self) -> None:
        ensure_kafka_lib(self.cfg, self.report)
        ensure_mongo_sink(self.cfg, self.report)

    def depends_ready(self) -> None:
        reason = probe_kafka(self.cfg.host, self.cfg.kafka_port) and probe_kafka(*self._any_broker())
        if reason:
            raise StackError(f"connect needs Kafka at {self.cfg.bootstrap_servers}: {reason}")

    def _any_broker(self) -> tuple[str, int]:
        """The last broker: with several, the first may be the one a test has just stopped."""
        return self.cfg.host, self.cfg.broker_ports(self.cfg.kafka_brokers)[0]

    def render_properties(self) -> str:
        template = Template((INFRA_DIR / "connect" / "worker.template.properties").read_text())
        return template.substitute(bootstrap_servers=self.cfg.bootstrap_servers, host=self.cfg.host,
                                   port=self.cfg.connect_port, plugin_path=plugin_root(self.cfg),
                                   replication=replication_for(self.cfg.kafka_brokers)[0])

    def prepare(self) -> None:
        self._home()
        self.properties_file.write_text(self.render_properties())

    def command(self) -> list[str]:
        return java_command(kafka_lib_dir(self.cfg), self.cfg.connect_heap, self.cfg.logs,
                            "org.apache.kafka.connect.cli.ConnectDistributed", str(self.properties_file))

    def probe(self) -> str | None:
        return probe_connect(self.url, MONGO_SINK_CLASS)

    # REST helpers (tests and the CLI register connectors with these) ------------------------------
    def request(self, method: str, path: str, body: dict | None = None, timeout: float = 30.0):
        """One REST call; returns (status, parsed JSON or None). Errors are returned, not raised."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
                return resp.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw)
            except ValueError:
                return exc.code, raw.decode("utf-8", "replace")

    def plugins(self) -> list[dict]:
        status, body, _ = http_get(self.url + "/connector-plugins")
        if status != 200:
            raise StackError(f"GET /connector-plugins answered {status}")
        return json.loads(body)

    def put_connector(self, name: str, config: dict) -> dict:
        """Create or update a connector (PUT /connectors/<name>/config is idempotent)."""
        status, body = self.request("PUT", f"/connectors/{name}/config", config)
        if status not in (200, 201):
            raise StackError(f"PUT /connectors/{name}/config answered {status}: {body}")
        return body

    def delete_connector(self, name: str) -> None:
        status, body = self.request("DELETE", f"/connectors/{name}")
        if status not in (204, 404):
            raise StackError(f"DELETE /connectors/{name} answered {status}: {body}")

    def connector_status(self, name: str) -> dict | None:
        status, body = self.request("GET", f"/connectors/{name}/status")
        return body if status == 200 else None
