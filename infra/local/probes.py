"""Readiness probes: each returns None when the server does real work, else a short reason.

A probe speaks the server's own protocol (a Kafka metadata request, HTTP, a MongoDB `ping`,
a Redis `PING`) because an open port alone says nothing: a JVM binds its port long before the
broker has a controller, and Connect's REST answers 404s before its plugins are scanned.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import urllib.error
import urllib.request
from typing import Any

from .proc import port_open


def _run_coro_in_thread(factory, timeout: float) -> Any:
    """asyncio.run in a private thread: works even if the caller is inside a running event loop
    (an async pytest fixture calling ensure_stack())."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(asyncio.wait_for(factory(), timeout))
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout + 5)
    if "error" in box:
        raise box["error"]
    if "value" not in box:
        raise TimeoutError("probe thread hung")
    return box["value"]


def kafka_metadata(bootstrap: str, timeout: float = 5.0) -> dict:
    """Ask the broker for cluster metadata with aiokafka's admin client (the client our services use)."""
    from aiokafka.admin import AIOKafkaAdminClient

    async def go() -> dict:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
        await admin.start()
        try:
            cluster = await admin.describe_cluster()
            topics = await admin.list_topics()
            return {"cluster": cluster, "topics": sorted(topics)}
        finally:
            await admin.close()

    noisy = logging.getLogger("aiokafka")
    level = noisy.level
    noisy.setLevel(logging.CRITICAL)  # connection errors while starting are expected, not news
    try:
        return _run_coro_in_thread(go, timeout)
    finally:
        noisy.setLevel(level)


def probe_kafka(host: str, port: int) -> str | None:
    if not port_open(host, port):
        return f"nothing listening on {host}:{port}"
    try:
        meta = kafka_metadata(f"{host}:{port}")
    except Exception as exc:
        return f"metadata request failed: {type(exc).__name__}: {exc}"
    brokers = meta["cluster"].get("brokers") or []
    if not brokers:
        return "metadata answered but lists no broker yet"
    return None


def http_get(url: str, timeout: float = 3.0) -> tuple[int, bytes, dict[str, str]]:
    """(status, body, headers) for a GET; HTTP error statuses are returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers or {})


def probe_http_ok(url: str) -> str | None:
    try:
        status, _, _ = http_get(url)
    except (OSError, urllib.error.URLError) as exc:
        return f"GET {url}: {exc}"
    return None if status == 200 else f"GET {url} answered {status}"


def probe_connect(base_url: str, required_plugin: str) -> str | None:
    reason = probe_http_ok(base_url + "/")
    if reason:
        return reason
    try:
        status, body, _ = http_get(base_url + "/connector-plugins")
    except (OSError, urllib.error.URLError) as exc:
        return f"GET /connector-plugins: {exc}"
    if status != 200:
        return f"GET /connector-plugins answered {status}"
    classes = [p.get("class") for p in json.loads(body)]
    if required_plugin not in classes:
        return f"{required_plugin} not among plugins {classes}"
    return None


def probe_mongo(url: str) -> str | None:
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    client: MongoClient[dict[str, object]] = MongoClient(url, serverSelectionTimeoutMS=1500, connectTimeoutMS=1500)
    try:
        client.admin.command("ping")
        return None
    except PyMongoError as exc:
        return f"ping failed: {type(exc).__name__}: {str(exc)[:200]}"
    finally:
        client.close()


def probe_redis(host: str, port: int) -> str | None:
    """Raw RESP `PING` (no client library needed to tell if Redis is up)."""
    try:
        with socket.create_connection((host, port), timeout=1.0) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            answer = sock.recv(64)
    except OSError as exc:
        return f"PING {host}:{port}: {exc}"
    return None if answer.startswith(b"+PONG") else f"PING answered {answer!r}"
