"""Run MovieAugur's distributed services as real processes against the real local stack.

Each test session gets its own topic prefix, Redis prefix and MongoDB database, with its own
Connect sinks, so runs never see each other's data. The command and query services listen on the
ports the NGINX gateway routes to.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from domain.configuration import weights_of
from infra.local import Stack
from infra.local.testing import ensure_stack
from kernel.settings import Settings
from movieaugur.adapters.connect_sinks import sinks_of
from movieaugur.adapters.kafka_log import KafkaEventLog
from movieaugur.adapters.redis_views import RedisViewStore
from movieaugur.operations import prepare_distributed
from movieaugur.stack_settings import stack_settings
from projections.registry import build_projections
from projections.runner import Projector

EXECUTABLE = str(Path(sys.executable).with_name("movieaugur"))  # this venv's, not whatever is on PATH


def http(method: str, url: str, body: object | None = None, timeout: float = 30.0) -> tuple[int, dict, object]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, dict(error.headers), json.loads(raw) if raw else None


def wait_for(check, timeout: float = 60.0, interval: float = 0.2, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except (urllib.error.URLError, ConnectionError, OSError):
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        time.sleep(interval)


@dataclass
class Services:
    stack: Stack
    env: dict[str, str]
    logs: Path
    run: str
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        return Settings(**{k.removeprefix("MOVIEAUGUR_").lower(): v for k, v in self.env.items()
                           if k.startswith("MOVIEAUGUR_") and k.removeprefix("MOVIEAUGUR_").lower() in Settings.model_fields})

    @property
    def gateway(self) -> str:
        return self.stack.gateway_url

    def start(self, role: str, name: str | None = None) -> subprocess.Popen:
        """Start `serve --role role` as process `name` (default: the role), logging to name.log."""
        name = name or role
        log = (self.logs / f"{name}.log").open("a")
        process = subprocess.Popen([EXECUTABLE, "serve", "--role", role], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.processes[name] = process
        port = {"commands": self.env["MOVIEAUGUR_COMMAND_PORT"], "queries": self.env["MOVIEAUGUR_QUERY_PORT"]}.get(role)
        if port:
            wait_for(lambda: http("GET", f"http://127.0.0.1:{port}/healthz")[0] == 200, what=f"{role} service up")
        return process

    def log_text(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def kill(self, role: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes.pop(role)
        process.send_signal(sig)
        process.wait(timeout=30)

    def stop_all(self) -> None:
        for role in list(self.processes):
            process = self.processes.pop(role)
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()

    def cleanup(self) -> None:
        """Stop this run's processes and sinks, and free its data in Redis and MongoDB."""
        self.stop_all()
        for sink in sinks_of(build_projections(weights_of(self.settings)).values()):
            self.stack.connect.delete_connector(sink.connector_name(self.settings.topic_prefix))
        import redis
        from pymongo import MongoClient

        client = redis.Redis.from_url(self.env["MOVIEAUGUR_REDIS_URL"])
        for key in client.scan_iter(match=f"{self.settings.topic_prefix}*", count=1000):
            client.delete(key)
        client.close()
        with MongoClient(self.env["MOVIEAUGUR_MONGO_URL"]) as mongo:
            mongo.drop_database(self.env["MOVIEAUGUR_MONGO_DATABASE"])

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run([EXECUTABLE, *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False)


def ensure_movieaugur_stack(stack: Stack | None = None) -> Stack:
    """The running stack (default: the shared one) plus MovieAugur's topics and Connect sinks (what
    `movieaugur stack up` does)."""
    stack = stack or ensure_stack()
    asyncio.run(prepare_distributed(stack_settings(stack)))
    return stack


def start_services(logs: Path, stack: Stack | None = None) -> Services:
    """This run's settings and topics on `stack` (default: the shared stack, started if needed)."""
    stack = ensure_movieaugur_stack(stack)
    run = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "MOVIEAUGUR_MODE": "distributed",
        "MOVIEAUGUR_TOPIC_PREFIX": f"t{run}.",
        "MOVIEAUGUR_MONGO_DATABASE": f"t{run}",
        "MOVIEAUGUR_KAFKA_BOOTSTRAP": stack.bootstrap_servers,
        "MOVIEAUGUR_REDIS_URL": stack.redis_url,
        "MOVIEAUGUR_MONGO_URL": stack.mongo_url,
        "MOVIEAUGUR_CONNECT_URL": stack.connect_url,
        "MOVIEAUGUR_DATA_DIR": str(logs / "state"),
        "MOVIEAUGUR_COMMAND_PORT": str(stack.cfg.command_port),
        "MOVIEAUGUR_QUERY_PORT": str(stack.cfg.query_port),
    }
    services = Services(stack, env, logs, run)
    asyncio.run(prepare_distributed(services.settings))  # this run's topics, then its Connect sinks on them
    return services


# -- comparing the live views with a from-scratch replay --------------------------------------------

VIEWS = ("popularity", "history")


def dump_redis(services: Services, prefix: str | None = None) -> dict:
    """The live projector-kept views (or those under `prefix`), as plain data."""
    async def dump() -> dict:
        settings = services.settings
        store = RedisViewStore(settings.redis_url, prefix=prefix or f"{settings.topic_prefix}v:")
        try:
            return await store.dump(list(VIEWS))
        finally:
            await store.close()

    return asyncio.run(dump())


def replay_into_fresh_views(services: Services) -> dict:
    """The same views rebuilt from the whole log under a prefix of their own."""
    async def replay() -> dict:
        settings = services.settings
        log = KafkaEventLog(settings)
        store = RedisViewStore(settings.redis_url, prefix=f"{settings.topic_prefix}replay:")
        try:
            for name in VIEWS:
                await Projector(build_projections(weights_of(settings))[name], log, store).replay()
            return await store.dump(list(VIEWS))
        finally:
            await log.close()
            await store.close()

    return asyncio.run(replay())


def view_positions(services: Services, projection: str = "popularity") -> int:
    """The sum of the live view's tracking positions (how far its projector has applied the log)."""
    async def read() -> int:
        settings = services.settings
        store = RedisViewStore(settings.redis_url, prefix=f"{settings.topic_prefix}v:")
        try:
            return sum((await store.positions(projection)).values())
        finally:
            await store.close()

    return asyncio.run(read())


def projection_state(services: Services, projection: str = "popularity") -> str:
    """For a failure message: the view's positions against the log's ends, and the projector's last
    log lines (a stalled projector says why there, or by its silence)."""
    async def read() -> tuple[dict[str, int], dict[str, int]]:
        settings = services.settings
        store = RedisViewStore(settings.redis_url, prefix=f"{settings.topic_prefix}v:")
        log = KafkaEventLog(settings)
        try:
            ends = {f"interactions/{p}": end for p, end in (await log.end_offsets("interactions")).items()}
            return await store.positions(projection), ends
        finally:
            await store.close()
            await log.close()

    try:
        positions, ends = asyncio.run(read())
        where = f"{projection} positions {dict(sorted(positions.items()))}, log ends {ends}"
    except Exception as error:  # the diagnosis must not hide the failure it explains
        where = f"positions unavailable: {error!r}"
    tail = "".join(services.log_text("projectors").splitlines(keepends=True)[-40:]) if (services.logs / "projectors.log").exists() else ""
    return f"{where}\n--- projectors log (last 40 lines) ---\n{tail}"


def logged_event_ids(services: Services, stream: str = "interactions") -> list[str]:
    """Every event id in the stream's topic, as read_committed readers see them (copies included)."""
    async def scan() -> list[str]:
        log = KafkaEventLog(services.settings)
        try:
            return [logged.event.event_id async for logged in log.scan(stream)]
        finally:
            await log.close()

    return asyncio.run(scan())
