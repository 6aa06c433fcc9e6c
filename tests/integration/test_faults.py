"""Issue 11's fault tests on a local three-broker cluster (its own stack dir and ports, beside the
shared single-broker stack): brokers, the Connect worker, a projector and Redis lose their process or
their data during sustained ingest, and afterwards every acknowledged event is in the log exactly
once and the views equal a from-scratch replay. Each test prints its tally and how long it took.

The writers are clients as the README describes them: a batch that got a 503 (or no answer) is sent
again with the same event ids until it is acknowledged, so in the end every batch is acknowledged.
"""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.error
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import redis as redis_sync
from aiokafka.admin import AIOKafkaAdminClient

from infra.local import KafkaBroker, Stack
from infra.local.testing import ensure_cluster_stack
from tests.integration.services import (
    Services,
    dump_redis,
    http,
    logged_event_ids,
    projection_state,
    replay_into_fresh_views,
    start_services,
    view_positions,
    wait_for,
)

pytestmark = pytest.mark.stack
BATCH = 50


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    started = time.monotonic()
    stack = ensure_cluster_stack(3)
    took = time.monotonic() - started
    services = start_services(tmp_path_factory.mktemp("faults"), stack=stack)
    for role in ("commands", "queries", "projectors"):
        services.start(role)
    print(f"\nthree-broker stack up in {took:.1f}s, services in {time.monotonic() - started - took:.1f}s")
    try:
        yield services
    finally:
        services.cleanup()
        stack.down()  # the shared stack's `movieaugur down` does not know this one


@dataclass
class Ingest:
    """Writers posting batches of unique `view`s to the command service until stopped; each batch
    is retried (same event ids) until acknowledged. Counts answers by status."""

    services: Services
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    acknowledged: set[str] = field(default_factory=set)
    statuses: Counter = field(default_factory=Counter)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def batch(self, writer: int, number: int) -> list[dict]:
        return [{"event_id": f"{self.tag}-{writer}-{number}-{i}", "user_id": f"{self.tag}-u{(number * 7 + i) % 300}",
                 "item_type": "movie", "item_id": f"{self.tag}-m{(writer * 13 + i) % 40}", "action": "view"}
                for i in range(BATCH)]

    def post(self, body: list[dict]) -> int:
        url = f"http://127.0.0.1:{self.services.env['MOVIEAUGUR_COMMAND_PORT']}/v1/events"
        try:
            status = http("POST", url, body, timeout=30)[0]
        except (urllib.error.URLError, OSError):
            status = 0  # no answer: the client cannot tell, so it retries like after a 503
        with self.lock:
            self.statuses[status] += 1
            if status == 200:
                self.acknowledged.update(event["event_id"] for event in body)
        return status

    def write(self, writer: int) -> None:
        number = 0
        while not self.stop.is_set():
            body = self.batch(writer, number)
            while self.post(body) != 200:  # retry until acknowledged, even after `stop`
                time.sleep(0.2)  # the client's back-off between retries, not a wait for a condition
            number += 1

    def start(self, writers: int = 2) -> Ingest:
        for writer in range(writers):
            thread = threading.Thread(target=self.write, args=(writer,), daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def count(self) -> int:
        with self.lock:
            return len(self.acknowledged)

    def wait_for_more(self, more: int, timeout: float, what: str) -> None:
        target = self.count() + more
        wait_for(lambda: self.count() >= target, timeout=timeout, interval=0.05, what=what)

    def finish(self, timeout: float = 180) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=timeout)
            assert not thread.is_alive(), "a writer's batch was never acknowledged"


def queries(services: Services) -> str:
    """The query service itself: NGINX would answer repeated GETs from its 5 s cache."""
    return f"http://127.0.0.1:{services.env['MOVIEAUGUR_QUERY_PORT']}"


def popularity_total(services: Services, tag: str) -> float | None:
    """What a client reads: the all-time popularity of this run's films, summed (None if not 200)."""
    status, _, body = http("GET", f"{queries(services)}/v1/popularity/movie?window=all&limit=1000")
    if status != 200:
        return None
    return sum(item["score"] for item in body["items"] if item["id"].startswith(f"{tag}-"))


def check_log_and_views(services: Services, ingest: Ingest) -> dict[str, int]:
    """Every acknowledged event in the log exactly once, nothing else of this run's; the views equal
    a replay of the whole log and count each acknowledged event once. Returns the tally."""
    def scan() -> Counter:
        return Counter(i for i in logged_event_ids(services) if i.startswith(f"{ingest.tag}-"))

    # An acknowledged commit's markers reach the partitions a moment after the coordinator decided
    # it, and only then do read_committed readers see it: scan again until every id shows (or 60 s).
    logged = scan()
    deadline = time.monotonic() + 60
    while not ingest.acknowledged <= set(logged) and time.monotonic() < deadline:
        logged = scan()
    doubled = sum(1 for count in logged.values() if count > 1)
    lost = len(ingest.acknowledged - set(logged))
    tally = {"acknowledged": len(ingest.acknowledged), "in log": len(logged), "lost": lost, "doubled in log": doubled,
             **{f"answers {status}": count for status, count in sorted(ingest.statuses.items())}}
    assert lost == 0, tally
    assert set(logged) == ingest.acknowledged, tally
    assert doubled == 0, tally
    expected = float(len(ingest.acknowledged))
    try:
        wait_for(lambda: popularity_total(services, ingest.tag) == expected, timeout=120, interval=0.5,
                 what=f"popularity counting each of the {len(ingest.acknowledged)} acknowledged events once")
    except AssertionError as failure:
        read = popularity_total(services, ingest.tag)
        raise AssertionError(f"{failure}: read {read}, expected {expected}; {projection_state(services)}") from None
    replayed = replay_into_fresh_views(services)
    wait_for(lambda: dump_redis(services) == replayed, timeout=120, interval=1.0, what="views equal a from-scratch replay")
    return tally


def report(capsys: pytest.CaptureFixture, name: str, tally: dict, started: float) -> None:
    with capsys.disabled():
        print(f"\n[fault] {name}: {tally} in {time.monotonic() - started:.1f}s")


def interactions_leaders(services: Services) -> tuple[dict[int, int], int]:
    """(partition -> leader node id) of the interactions topic, and the active controller's id."""
    async def ask() -> tuple[dict[int, int], int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=services.settings.kafka_bootstrap)
        await admin.start()
        try:
            [topic] = await admin.describe_topics([services.settings.topic("interactions")])
            cluster = await admin.describe_cluster()
            return {p["partition"]: p["leader"] for p in topic["partitions"]}, cluster["controller_id"]
        finally:
            await admin.close()

    return asyncio.run(ask())


def restart(brokers: list[KafkaBroker]) -> None:
    """Launch every stopped node first: a quorum that lost two voters forms only with both back."""
    for broker in brokers:
        broker.launch()
    for broker in brokers:
        broker.start()


def broker(stack: Stack, node: int) -> KafkaBroker:
    return next(b for b in stack.brokers if b.node == node)


def test_leader_broker_killed_during_ingest(cluster: Services, capsys: pytest.CaptureFixture) -> None:
    started = time.monotonic()
    ingest = Ingest(cluster).start()
    ingest.wait_for_more(20 * BATCH, timeout=60, what="ingest under way")
    leaders, controller = interactions_leaders(cluster)
    # The active controller when it also leads interactions partitions (leaders are spread over the
    # three nodes, so it usually does): both elections at once.
    victim = broker(cluster.stack, controller if controller in leaders.values() else leaders[0])
    victim.kill()
    at_kill = ingest.count()
    try:
        ingest.wait_for_more(40 * BATCH, timeout=90, what="writes acknowledged again after the leader election")
        after = interactions_leaders(cluster)[0]
        assert victim.node not in after.values(), after
    finally:
        ingest.finish()
        victim.start()
    tally = check_log_and_views(cluster, ingest)
    led = sorted(p for p, node in leaders.items() if node == victim.node)
    tally.update(killed=f"node {victim.node} (controller: {victim.node == controller}, led interactions partitions {led})",
                 acknowledged_at_kill=at_kill)
    report(capsys, "one broker SIGKILLed", tally, started)


def test_two_brokers_killed_writes_answer_503_then_resume(cluster: Services, capsys: pytest.CaptureFixture) -> None:
    started = time.monotonic()
    ingest = Ingest(cluster)
    for number in range(5):
        assert ingest.post(ingest.batch(9, number)) == 200
    victims = cluster.stack.brokers[1:]
    for victim in victims:
        victim.kill()
    try:
        refused = [ingest.post(ingest.batch(9, 100 + n)) for n in range(3)]
        assert refused == [503, 503, 503], refused
    finally:
        restart(victims)
    for n in range(3):  # the client retries what got a 503
        wait_for(lambda n=n: ingest.post(ingest.batch(9, 100 + n)) == 200, timeout=120, interval=1.0,
                 what=f"retry {n} acknowledged after the restart")
    tally = check_log_and_views(cluster, ingest)
    report(capsys, "two brokers SIGKILLed", tally, started)


def catalogued(services: Services, tag: str, count: int) -> bool:
    for n in range(count):
        status, _, body = http("GET", f"{queries(services)}/v1/items/movie/{tag}-c{n}")
        if status != 200 or body.get("title") != f"Title {n}":
            return False
    return True


def test_connect_worker_and_projector_killed_together(cluster: Services, capsys: pytest.CaptureFixture) -> None:
    started = time.monotonic()
    ingest = Ingest(cluster).start()
    tag, items = ingest.tag, 300
    before = view_positions(cluster)
    commands = f"http://127.0.0.1:{cluster.env['MOVIEAUGUR_COMMAND_PORT']}"
    for first in range(0, items, 100):
        body = [{"item_type": "movie", "item_id": f"{tag}-c{n}", "title": f"Title {n}"} for n in range(first, first + 100)]
        assert http("POST", f"{commands}/v1/items", body)[0] == 200
    ingest.wait_for_more(20 * BATCH, timeout=60, what="ingest under way")
    wait_for(lambda: view_positions(cluster) > before, interval=0.01, what="projector applying")
    cluster.stack.connect.kill()
    cluster.kill("projectors")
    try:
        ingest.wait_for_more(10 * BATCH, timeout=60, what="writes go on without Connect and projectors")
    finally:
        ingest.finish()
        cluster.stack.connect.start()
        cluster.start("projectors")
    tally = check_log_and_views(cluster, ingest)
    wait_for(lambda: catalogued(cluster, tag, items), timeout=180, interval=1.0, what="catalog sink caught up")
    tally.update(items=items)
    report(capsys, "Connect worker and projector SIGKILLed", tally, started)


def test_redis_flushed_under_load_rebuilds_and_says_so(cluster: Services, capsys: pytest.CaptureFixture) -> None:
    started = time.monotonic()
    ingest = Ingest(cluster).start()
    ingest.wait_for_more(100 * BATCH, timeout=120, what="a log worth rebuilding")
    wait_for(lambda: popularity_total(cluster, ingest.tag), timeout=60, what="popularity served")
    # A burst, so that the flush finds the projector busy applying (not idle between writes): its
    # next batch then starts past 0 on a store without tracking, which is how it must notice.
    applied = view_positions(cluster)
    for burst in range(4):
        body = [{"event_id": f"{ingest.tag}-burst-{burst}-{i}", "user_id": f"{ingest.tag}-u{i % 300}",
                 "item_type": "movie", "item_id": f"{ingest.tag}-m{i % 40}", "action": "view"} for i in range(5000)]
        assert ingest.post(body) == 200
    wait_for(lambda: view_positions(cluster) > applied + 2000, interval=0.01, what="projector applying the burst")
    before = ingest.count()
    redis_sync.Redis.from_url(cluster.env["MOVIEAUGUR_REDIS_URL"]).flushdb()
    answers: Counter = Counter()
    short: list[float] = []

    def rebuilt() -> bool:
        status, _, body = http("GET", f"{queries(cluster)}/v1/popularity/movie?window=all&limit=1000")
        if status == 503:
            answers["503 rebuilding" if body.get("rebuilding") == "popularity" else "503 other"] += 1
            return False
        answers[status] += 1
        total = sum(item["score"] for item in body["items"] if item["id"].startswith(f"{ingest.tag}-"))
        if total < before:
            short.append(total)  # a 200 that misses acknowledged events: wrong data
        return True

    try:
        wait_for(rebuilt, timeout=120, interval=0.0, what="reads answering 200 again")
    finally:
        ingest.finish()
    tally = check_log_and_views(cluster, ingest)
    tally.update({f"reads {k}": v for k, v in answers.items()}, short_reads=len(short))
    assert not short, tally
    assert answers["503 rebuilding"] > 0, tally
    report(capsys, "Redis flushed", tally, started)
