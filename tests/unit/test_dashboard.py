"""The dashboard's HTML pages (movieaugur/dashboard.py): they render with every section, show what
the views hold, escape whatever comes from data or the request, and survive a failing read."""

from __future__ import annotations

import re
import time
from html.parser import HTMLParser
from urllib.parse import quote, urlsplit

from domain.events import ModelPublished, RecommendationsPublished
from kernel.http import Metrics
from movieaugur.dashboard import RateSampler, counter_totals, ndcg_chart
from tests.conftest import settle

NOW = int(time.time())
HOSTILE = "<script>alert('x')</script>"


def event(event_id: str, user: str, item: str, item_type: str = "movie", **extra):  # type: ignore[no-untyped-def]
    return {"event_id": event_id, "user_id": user, "item_id": item, "item_type": item_type, "timestamp": NOW - 100, **extra}


def metrics(mine: float, popularity: float) -> dict[str, dict[str, float]]:
    return {"holdout": {"ndcg@100": mine, "recall@20": 0.3}, "popularity": {"ndcg@100": popularity, "recall@20": 0.2},
            "selection": {"ndcg@100": mine - 0.01}}


async def fill(client, container) -> None:  # type: ignore[no-untyped-def]
    """A small catalog, interactions, and two published versions (one passed the gate, one forced)."""
    await client.post("/v1/items", json=[
        {"item_type": "movie", "item_id": "m1", "title": "Heat", "release_date": "1995-12-15", "categories": ["Crime"],
         "creators": ["Michael Mann"]},
        {"item_type": "movie", "item_id": "m2", "title": "Alien", "categories": ["Horror", "Sci-Fi"]},
        {"item_type": "movie", "item_id": "m3", "title": f"Bad {HOSTILE} title", "categories": [HOSTILE]},
        {"item_type": "series", "item_id": "s1", "title": "The Wire", "categories": ["Drama"]},
    ])
    await client.post("/v1/events", json=[
        event("1", "u1", "m1", action="like"), event("2", "u2", "m1"), event("3", "u2", "m2"),
        event("4", "u3", "s1", item_type="series"), event("5", "u3", "m3"),
    ])
    picks = [{"item_type": "movie", "item_id": "m2", "score": 0.9}, {"item_type": "series", "item_id": "s1", "score": 0.5}]
    await container.log.append([
        ModelPublished.new(model="default", model_version="v1", algorithm="als", params={"factors": 64},
                           metrics=metrics(0.30, 0.20), users=3, items_count=4),
        RecommendationsPublished.new(model="default", model_version="v2", user_id="u1", items=picks),
        ModelPublished.new(model="default", model_version="v2", algorithm="blend",
                           params={"weights": [0.5, 0.5], "components": [{"kind": "ease", "params": {"lam": 200}}]},
                           metrics=metrics(0.10, 0.25), users=3, items_count=4),
    ])
    await settle(container)


class Parsed(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def parsed(text: str) -> Parsed:
    parser = Parsed()
    parser.feed(text)
    return parser


async def test_overview_renders_every_section(client, container) -> None:  # type: ignore[no-untyped-def]
    await fill(client, container)
    page = await client.get("/dashboard")
    assert page.status == 200 and page.content_type == "text/html" and page.headers["X-Request-Id"]
    assert "script-src" not in page.headers["Content-Security-Policy"]  # default-src 'none': no script may run
    text = await page.text()
    tags = parsed(text).tags
    ids = {attrs.get("id") for _, attrs in tags}
    assert {"popularity", "users", "models", "operations"} <= ids
    assert not any(tag in ("script", "iframe", "object") for tag, _ in tags)
    links = [attrs.get("href") or attrs.get("src") or "" for _, attrs in tags]
    assert all(not urlsplit(url).scheme or url.startswith("data:") for url in links), links  # nothing from elsewhere
    # Popularity: every type, every window, titles and metadata as text.
    windows = [attrs.get("data-window") for _, attrs in tags if attrs.get("data-window")]
    assert windows == ["all", "7d", "30d"] * 2
    assert "Heat" in text and "(1995)" in text and "Michael Mann" in text and "The Wire" in text
    # The registry: both versions, their gate verdicts, the chart with one point per version.
    assert "v1" in text and "v2" in text and "blend" in text and "factors=64" in text
    assert "passed: beats popularity" in text and "does not beat popularity" in text
    assert "answers now" in text  # v2, the latest
    assert text.count("class='version-point'") == 2
    assert "0.3000" in text and "0.2000" in text and "+0.1000" in text
    # Operations: projectors, the log, requests.
    assert "local-catalog" in text and "interactions/0" in text and "Requests by status class" in text
    assert re.search(r"<td>interactions</td><td class='n'>\d+</td><td class='n'>—</td><td class='n'>5</td>", text), \
        "this process appended the 5 interactions"
    # Every user-supplied string is escaped.
    assert HOSTILE not in text and "&lt;script&gt;" in text


async def test_user_page_history_recommendations_fallback_and_placeholder(client, container) -> None:  # type: ignore[no-untyped-def]
    await fill(client, container)
    page = await client.get("/dashboard/users/u1")
    assert page.status == 200
    text = await page.text()
    cards = {attrs.get("data-model") for _, attrs in parsed(text).tags if attrs.get("data-model")}
    assert cards == {"default", "popularity"}
    history = text.split("id='history'")[1]
    assert "Heat" in history  # u1 liked m1
    recommendations = text.split("id='recommendations'")[1].split("id='lists'")[0]
    default, fallback = recommendations.split("data-model='popularity'")
    assert "Alien" in default and "The Wire" in default and "v2" in default
    assert "Heat" not in fallback  # the fallback leaves out what u1 has seen
    assert "Alien" in fallback
    assert "id='lists'" in text and "Lists are not shown yet" in text

    cold = await (await client.get("/dashboard/users/nobody")).text()
    assert "no interactions known" in cold and "nothing for this user: popularity fallback" in cold


async def test_user_ids_are_escaped_and_the_form_redirects(client, container) -> None:  # type: ignore[no-untyped-def]
    page = await client.get("/dashboard/users/" + quote(HOSTILE, safe=""))
    assert page.status == 200
    text = await page.text()
    assert HOSTILE not in text and "alert(" in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    assert not any(tag == "script" for tag, _ in parsed(text).tags)

    jump = await client.get("/dashboard/users", params={"user_id": " a/b c "}, allow_redirects=False)
    assert jump.status == 302 and jump.headers["Location"] == "/dashboard/users/a%2Fb%20c" and jump.headers["X-Request-Id"]
    empty = await client.get("/dashboard/users", params={"user_id": ""}, allow_redirects=False)
    assert empty.status == 302 and empty.headers["Location"] == "/dashboard"


async def test_empty_system_and_a_failing_read_still_render(client, container, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    text = await (await client.get("/dashboard")).text()
    assert "no model published yet" in text and "nothing yet" in text

    async def broken(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise ConnectionError("view store down")

    monkeypatch.setattr(container.store, "keys", broken)
    page = await client.get("/dashboard")
    assert page.status == 200
    text = await page.text()
    assert "model registry unavailable: ConnectionError: view store down" in text
    assert "id='operations'" in text


def test_rates_come_from_two_samples_in_memory() -> None:
    rates = RateSampler(horizon=600, min_gap=5)
    assert rates.observe(1000.0, {"requests:2xx": 10}) == (None, {})
    span, per_minute = rates.observe(1030.0, {"requests:2xx": 40, "rejected:validation": 3})
    assert span == 30.0 and per_minute == {"requests:2xx": 60.0, "rejected:validation": 6.0}
    span, _ = rates.observe(1031.0, {"requests:2xx": 41})  # compared with the oldest kept sample
    assert span == 31.0
    span, _ = rates.observe(1700.0, {"requests:2xx": 50})  # older samples fall out of the horizon
    assert span is None or span <= 600


def test_counters_are_read_from_the_process_metrics() -> None:
    metrics = Metrics()
    metrics.requests.labels("GET", "/dashboard", "200").inc(3)
    metrics.requests.labels("POST", "/v1/events", "400").inc()
    metrics.requests.labels("GET", "/v1/items/{item_type}/{item_id}", "404").inc()
    metrics.requests.labels("GET", "/boom", "500").inc()
    metrics.events_appended.labels("interactions").inc(7)
    metrics.events_rejected.labels("validation").inc()
    assert counter_totals(metrics) == {"requests:2xx": 3, "requests:4xx": 2, "requests:5xx": 1, "appended:interactions": 7,
                                       "rejected:validation": 1, "fallbacks": 0}


def test_chart_has_one_point_per_version_and_escapes_names() -> None:
    versions = [
        {"model": HOSTILE, "model_version": "v1", "algorithm": "als", "published_at": NOW - 86_400, "metrics": metrics(0.3, 0.2)},
        {"model": HOSTILE, "model_version": "v2", "algorithm": "als", "published_at": NOW, "metrics": metrics(0.35, 0.2)},
        {"model": "other", "model_version": "v1", "algorithm": "ease", "published_at": NOW, "metrics": {}},  # no hold-out
    ]
    svg = ndcg_chart(versions)
    assert svg.startswith("<svg") and svg.count("class='version-point'") == 2 and "<polyline" in svg
    assert HOSTILE not in svg
    assert "no published version" in ndcg_chart([])
