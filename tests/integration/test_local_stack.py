"""The local stack for real: Kafka round trip, Connect + MongoDB sink into FerretDB, Redis, gateway.

These tests are the proof for claims stack.md could only read about: aiokafka against Kafka 4.x,
and the MongoDB Kafka sink against FerretDB (unverified upstream). They start the stack once per
session (ensure_stack is idempotent) and leave it running for the other integration tests.
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest

from infra.local.proc import port_open, tail
from infra.local.testing import ensure_stack

pytestmark = pytest.mark.stack

MONGO_SINK = "com.mongodb.kafka.connect.MongoSinkConnector"


@pytest.fixture(scope="session")
def stack():
    return ensure_stack()


async def create_topic(bootstrap: str, name: str, partitions: int = 1) -> None:
    """Topics are explicit (auto.create.topics.enable=false); create_topics does not raise on errors,
    so check the per-topic error code ourselves."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(name, partitions, 1)])
        for topic_error in response.topic_errors:
            code = topic_error[1]
            assert code in (0, 36), f"create_topics({name}) error code {code}: {topic_error}"  # 36: exists
    finally:
        await admin.close()


def wait_until(predicate, timeout: float, what: str, on_timeout=lambda: ""):
    """Poll with a deadline (never a fixed sleep): return the first truthy value of predicate()."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout}s waiting for {what}; last={last!r}\n{on_timeout()}")


# Kafka ------------------------------------------------------------------------------------------------

async def read_back(bootstrap: str, topic: str, expect: int, isolation_level: str = "read_uncommitted") -> list[tuple[bytes, bytes]]:
    """Read partition 0 of `topic` from the beginning until `expect` records arrived or 30 s passed."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level=isolation_level)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        got: list[tuple[bytes, bytes]] = []
        deadline = time.monotonic() + 30
        while len(got) < expect and time.monotonic() < deadline:
            batch = await consumer.getmany(tp, timeout_ms=1000)
            got.extend((m.key, m.value) for m in batch.get(tp, []))
        return got
    finally:
        await consumer.stop()


async def produce_consume(bootstrap: str, topic: str, values: list[bytes],
                          expect: int | None = None) -> list[tuple[bytes, bytes]]:
    """Produce `values` (idempotent producer), then read them back (`expect` records, default all)."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=b"user-1")
    finally:
        await producer.stop()
    return await read_back(bootstrap, topic, expect or len(values))


async def test_kafka_produce_and_consume(stack):
    topic = f"stacktest.roundtrip.{uuid.uuid4().hex[:8]}"
    await create_topic(stack.bootstrap_servers, topic)
    values = [json.dumps({"n": i}).encode() for i in range(3)]
    got = await produce_consume(stack.bootstrap_servers, topic, values)
    assert got == [(b"user-1", v) for v in values]


async def test_kafka_transactional_producer_commits(stack):
    """The transaction settings of stack.md: without them a transactional producer stalls on one broker.
    The committed record must be visible to a read_committed consumer (what the projectors use)."""
    from aiokafka import AIOKafkaProducer

    topic = f"stacktest.tx.{uuid.uuid4().hex[:8]}"
    await create_topic(stack.bootstrap_servers, topic)
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap_servers, transactional_id=f"tx-{topic}")
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send(topic, b"in-a-transaction", key=b"user-1")
    finally:
        await producer.stop()
    got = await read_back(stack.bootstrap_servers, topic, 1, isolation_level="read_committed")
    assert got == [(b"user-1", b"in-a-transaction")]


# Kafka Connect + MongoDB sink -> FerretDB -----------------------------------------------------------------

def test_connect_lists_mongo_sink(stack):
    classes = {p["class"] for p in stack.connect.plugins()}
    assert MONGO_SINK in classes


def sink_config(topic: str, mongo_url: str, database: str, collection: str) -> dict:
    """The configuration proven here to upsert into FerretDB by the `_id` carried in the value."""
    return {
        "connector.class": MONGO_SINK,
        "tasks.max": "1",
        "topics": topic,
        "connection.uri": mongo_url,
        "database": database,
        "collection": collection,
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
        "document.id.strategy": "com.mongodb.kafka.connect.sink.processor.id.strategy.ProvidedInValueStrategy",
        # Without this the connector logs a WARN for every record ("Cannot overwrite the existing
        # '_id' value") although the provided _id is exactly what we want; true = take it, quietly.
        "document.id.strategy.overwrite.existing": "true",
        "errors.tolerance": "none",
        "errors.log.enable": "true",
        "errors.log.include.messages": "true",
    }


async def test_mongo_sink_upserts_into_ferretdb(stack):
    from aiokafka import AIOKafkaProducer
    from pymongo import MongoClient

    suffix = uuid.uuid4().hex[:8]
    topic, name, database, collection = f"stacktest.sink.{suffix}", f"stacktest-sink-{suffix}", "stacktest", f"docs_{suffix}"
    await create_topic(stack.bootstrap_servers, topic)
    stack.connect.put_connector(name, sink_config(topic, stack.mongo_url, database, collection))
    client = MongoClient(stack.mongo_url, serverSelectionTimeoutMS=5000)
    coll = client[database][collection]

    def diagnostics() -> str:
        return (f"connector status: {stack.connect.connector_status(name)}\n"
                f"connect log tail ({stack.connect.proc.log_file}):\n{tail(stack.connect.proc.log_file, 40)}")

    try:
        producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap_servers, enable_idempotence=True)
        await producer.start()
        try:
            for version in (1, 2):
                doc = {"_id": "movie-42", "title": "The Answer", "version": version, "scores": [{"item": "a", "score": 0.5}]}
                await producer.send_and_wait(topic, json.dumps(doc).encode(), key=b"movie-42")
        finally:
            await producer.stop()

        def landed():
            docs = list(coll.find({}))
            return docs if len(docs) == 1 and docs[0].get("version") == 2 else None

        docs = wait_until(landed, 120, "the sink to write version 2 of movie-42 into FerretDB", diagnostics)
        assert docs[0]["_id"] == "movie-42"
        assert docs[0]["scores"] == [{"item": "a", "score": 0.5}]
        state = stack.connect.connector_status(name)
        assert state["connector"]["state"] == "RUNNING", diagnostics()
        assert all(t["state"] == "RUNNING" for t in state["tasks"]), diagnostics()
    finally:
        stack.connect.delete_connector(name)
        client[database].drop_collection(collection)
        client.close()


# Redis and the gateway -------------------------------------------------------------------------------------

def test_redis_ping(stack):
    import redis

    client = redis.Redis.from_url(stack.redis_url)
    try:
        assert client.ping() is True
    finally:
        client.close()


def test_gateway_healthz(stack):
    with urllib.request.urlopen(stack.gateway_url + "/healthz", timeout=5) as resp:
        assert resp.status == 200
        assert resp.read() == b"ok\n"


class _Echo(http.server.BaseHTTPRequestHandler):
    """Stands in for the command or query service: answers with its own name and the request line."""

    service = "?"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps({"service": self.service, "method": self.command, "path": self.path,
                           "n": time.monotonic_ns()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass


def _serve(port: int, service: str) -> http.server.ThreadingHTTPServer:
    handler = type(f"Echo_{service}", (_Echo,), {"service": service})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _call(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, dict, dict]:
    req = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, json.loads(resp.read()), dict(resp.headers)


def test_gateway_routes_and_caches(stack):
    """Writes reach the command service uncached; reads reach the query service and are cached."""
    cfg = stack.cfg
    if port_open("127.0.0.1", cfg.command_port) or port_open("127.0.0.1", cfg.query_port):
        pytest.skip("real command/query services are running on the upstream ports")
    servers = [_serve(cfg.command_port, "command"), _serve(cfg.query_port, "query")]
    try:
        base = stack.gateway_url
        path = f"/v1/recommendations/u-{uuid.uuid4().hex[:6]}"
        _, first, h1 = _call(base + path)
        _, second, h2 = _call(base + path)
        assert first["service"] == "query" and h1["X-Cache-Status"] == "MISS"
        assert h2["X-Cache-Status"] == "HIT" and second == first
        for method, route in (("POST", "/events"), ("POST", "/v1/events"), ("PUT", "/v1/items/movie/42"),
                              ("POST", "/v1/items/movie")):
            _, answer, headers = _call(base + route, method, b"{}")
            assert answer["service"] == "command", (method, route, answer)
            # POST/PUT are outside proxy_cache_methods: the cache is not consulted, so the status is
            # empty and nginx omits the header.
            assert headers.get("X-Cache-Status") in (None, "BYPASS"), headers
        _, answer, _ = _call(base + "/v1/items/movie/42")
        assert answer["service"] == "query"
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


# Broker stop/start (what the 503 tests do) ------------------------------------------------------------------

async def test_kafka_broker_restart_keeps_data(stack):
    topic = f"stacktest.restart.{uuid.uuid4().hex[:8]}"
    await create_topic(stack.bootstrap_servers, topic)
    await produce_consume(stack.bootstrap_servers, topic, [b"before"])
    stack.kafka.stop()
    assert not port_open("127.0.0.1", stack.cfg.kafka_port)
    with socket.socket() as sock:  # nothing answers while the broker is down
        assert sock.connect_ex(("127.0.0.1", stack.cfg.kafka_port)) != 0
    stack.kafka.start()
    got = await produce_consume(stack.bootstrap_servers, topic, [b"after"], expect=2)
    assert got == [(b"user-1", b"before"), (b"user-1", b"after")]
    # Connect reconnects by itself; make sure the stack is whole again for later tests.
    wait_until(lambda: stack.connect.probe() is None, 60, "Connect healthy after the broker restart")
