"""The dashboard: plain server-rendered HTML pages of the query service, at /dashboard.

`GET /dashboard` shows popularity per item type and window, the model registry (every published
version with its held-out metrics against popularity, and a chart of held-out NDCG@100 over time),
the A/B experiments' per-variant counts (movieaugur/dashboard_experiments.py), and the process's operations: projector positions and lag, the log's size and ingest rate, request
and error counts. `GET /dashboard/users/{user_id}` explores one user: history, and the
recommendations of every published model side by side with the popularity fallback.

Everything is read through the ports the query service has in either mode: the QueryService's
public methods, the container's view store (the registry's versions) and event log (end offsets),
the projectors' lag as recorded into the Prometheus gauge by the app's scrape refreshers, and this
process's Prometheus counters. No JavaScript, no files from elsewhere: the CSS is inline and the
chart is an SVG drawn here. Every string that comes from data or from the request is escaped.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web

from domain.events import STREAMS
from kernel.http import Metrics
from movieaugur.bootstrap import Container
from movieaugur.dashboard_experiments import experiments_section, user_variants
from projections import recommendations as recommendations_view
from queries.experiments import ExperimentQueries
from queries.http import EXPERIMENTS
from queries.service import NotFound, QueryService, Ranked

log = logging.getLogger(__name__)

DASHBOARD = "/dashboard"
WINDOWS = ("all", "7d", "30d")
LIST_LENGTH = 10
HISTORY_LENGTH = 50
NDCG = "ndcg@100"
#: How far back the in-memory samples for per-minute rates reach, and how far apart they are kept.
RATE_HORIZON_SECONDS = 600.0
RATE_MIN_GAP_SECONDS = 5.0
_SECTION_TIMEOUT = 20.0
# Nothing but inline styles and a data: icon; no script, no frame, forms only to this server.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf")


def e(value: object) -> str:
    """Any value as HTML text (attributes too: quotes are escaped)."""
    return html.escape(str(value), quote=True)


# -- rates from samples kept in memory ---------------------------------------------------------


class RateSampler:
    """Counter totals sampled at page loads. A rate is (now − an earlier sample) per minute, the
    earlier sample being the oldest kept within RATE_HORIZON_SECONDS; samples are kept at least
    RATE_MIN_GAP_SECONDS apart. Nothing runs in the background: no page load, no sample."""

    def __init__(self, horizon: float = RATE_HORIZON_SECONDS, min_gap: float = RATE_MIN_GAP_SECONDS):
        self.horizon = horizon
        self.min_gap = min_gap
        self.samples: deque[tuple[float, dict[str, float]]] = deque(maxlen=int(horizon / min_gap) + 2)

    def observe(self, now: float, totals: dict[str, float]) -> tuple[float | None, dict[str, float]]:
        """(seconds between the two samples compared, per-minute rate per key); (None, {}) when
        there is no earlier sample yet."""
        while self.samples and now - self.samples[0][0] > self.horizon:
            self.samples.popleft()
        baseline = self.samples[0] if self.samples and now - self.samples[0][0] >= 1.0 else None
        if not self.samples or now - self.samples[-1][0] >= self.min_gap:
            self.samples.append((now, dict(totals)))
        if baseline is None:
            return None, {}
        then, before = baseline
        span = now - then
        return span, {key: max(0.0, value - before.get(key, 0.0)) * 60.0 / span for key, value in totals.items()}


# -- reading the process's metrics ---------------------------------------------------------------


def _samples(metric: Any, suffix: str = "_total") -> list[tuple[dict[str, str], float]]:
    """(labels, value) of a prometheus_client metric's samples (counters: their `_total`)."""
    out = []
    for family in metric.collect():
        for sample in family.samples:
            if suffix and not sample.name.endswith(suffix):
                continue
            out.append((dict(sample.labels), float(sample.value)))
    return out


def _status_class(status: str) -> str:
    return "499 (client gone)" if status == "499" else f"{status[:1]}xx"


def counter_totals(metrics: Metrics) -> dict[str, float]:
    """This process's counters since it started, flattened: `requests:2xx`, `appended:<stream>`,
    `rejected:<reason>`, `fallbacks`."""
    totals: dict[str, float] = {}

    def add(key: str, value: float) -> None:
        totals[key] = totals.get(key, 0.0) + value

    for labels, value in _samples(metrics.requests):
        add(f"requests:{_status_class(labels['status'])}", value)
    for labels, value in _samples(metrics.events_appended):
        add(f"appended:{labels['stream']}", value)
    for labels, value in _samples(metrics.events_rejected):
        add(f"rejected:{labels['reason']}", value)
    for _, value in _samples(metrics.fallbacks):
        add("fallbacks", value)
    return totals


# -- formatting ----------------------------------------------------------------------------------


def _when(value: Any) -> str:
    moment = _epoch(value)
    return "—" if moment is None else datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _epoch(value: Any) -> float | None:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    return None


def _number(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _count(value: float) -> str:
    return f"{value:,.0f}"


def _rate(rates: dict[str, float], key: str, span: float | None) -> str:
    return "—" if span is None else f"{rates.get(key, 0.0):,.1f}"


def _item(item: dict[str, Any], top: float | None = None, show_type: bool = True) -> str:
    """One item as text: title, year, type, categories, creators (the metadata a poster would show)."""
    title = item.get("title") or item.get("id", "?")
    year = str(item.get("release_date") or "")[:4]
    meta = " · ".join(str(c) for c in item.get("categories") or ())
    creators = ", ".join(str(c) for c in item.get("creators") or ())
    parts = [f"<span class='title'>{e(title)}</span>"]
    if year:
        parts.append(f" <span class='muted'>({e(year)})</span>")
    if show_type:
        parts.append(f" <span class='tag'>{e(item.get('object_type', ''))}</span>")
    line2 = " — ".join(p for p in (e(meta), e(creators)) if p)
    if line2:
        parts.append(f"<div class='meta'>{line2}</div>")
    if top is not None and "score" in item:
        score = float(item["score"])
        width = 0.0 if top <= 0 else max(0.0, min(100.0, 100.0 * score / top))
        parts.append(f"<div class='score'><span class='bar'><span style='width:{width:.1f}%'></span></span>"
                     f"<span class='meta'>{score:.4g}</span></div>")
    tip = str(item.get("description") or "")[:300]
    ident = f"{item.get('object_type', '')}:{item.get('id', '')}"
    return f"<li title='{e(tip or ident)}' data-item='{e(ident)}'>{''.join(parts)}</li>"


def _ranked_list(items: list[dict[str, Any]], show_type: bool = True) -> str:
    if not items:
        return "<p class='muted'>nothing yet</p>"
    top = max((float(i.get("score", 0.0)) for i in items), default=0.0)
    return "<ol class='items'>" + "".join(_item(i, top, show_type) for i in items) + "</ol>"


def _problem(what: str, error: BaseException) -> str:
    if isinstance(error, NotFound):
        return f"<p class='muted'>{e(error)}</p>"
    return f"<p class='error'>{e(what)} unavailable: {e(type(error).__name__)}: {e(str(error)[:300])}</p>"


async def _guarded(what: str, work: Awaitable[str]) -> str:
    """A section's HTML, or a line saying why it could not be read (the rest of the page still renders)."""
    try:
        return await asyncio.wait_for(work, _SECTION_TIMEOUT)
    except NotFound as missing:
        return _problem(what, missing)
    except Exception as error:
        log.warning("dashboard: %s unavailable: %r", what, error)
        return _problem(what, error)


_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2433;background:#f4f6fa}
header{background:#1d2433;color:#fff;padding:12px 24px;display:flex;gap:24px;align-items:center;flex-wrap:wrap}
header a{color:#cfe0ff;text-decoration:none}header h1{font-size:20px;margin:0}
main{padding:16px 24px;max-width:1400px}
section{background:#fff;border:1px solid #dde3ee;border-radius:8px;padding:12px 18px;margin:0 0 16px}
h2{font-size:18px;margin:4px 0 10px}h3{font-size:15px;margin:10px 0 6px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:12px}
.grid.windows{grid-template-columns:repeat(auto-fit,minmax(240px,1fr))}
.card{border:1px solid #e6eaf2;border-radius:6px;padding:8px 10px;background:#fbfcfe}
ol.items{margin:0;padding-left:22px;font-size:14px}ol.items li{margin:0 0 5px}
.title{font-weight:600}.muted{color:#6b7385}.meta{color:#56607a;font-size:12px}
.tag{font-size:11px;background:#e8eefb;color:#2b4a8b;border-radius:3px;padding:0 4px}
.score{display:flex;align-items:center;gap:6px}
.bar{flex:0 1 160px;height:4px;background:#eef1f6;border-radius:2px}
.bar span{display:block;height:4px;background:#4b7bd8;border-radius:2px}
tr.sub td{border-bottom:2px solid #dde3ee;padding-top:0}details summary{cursor:pointer}
pre{margin:4px 0;font-size:12px;white-space:pre-wrap}
table{border-collapse:collapse;font-size:13px;margin:4px 0 8px}
th,td{border-bottom:1px solid #e6eaf2;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f0f3f9}td.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#17803d;font-weight:600}.warn{color:#b35c00;font-weight:600}.error{color:#b3261e}
.placeholder{border:2px dashed #c4cbe0;border-radius:6px;padding:8px 12px;color:#56607a;background:#fafbfd}
form{display:inline-flex;gap:6px}input{padding:4px 6px}
code{background:#eef1f6;padding:0 3px;border-radius:3px}
"""


def _page(title: str, body: str, user_id: str = "") -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{e(title)}</title><link rel='icon' href='data:,'><style>{_STYLE}</style></head><body>"
        "<header><h1>MovieAugur dashboard</h1>"
        f"<a href='{DASHBOARD}'>overview</a><a href='{DASHBOARD}#popularity'>popularity</a>"
        f"<a href='{DASHBOARD}#models'>models</a><a href='{DASHBOARD}#operations'>operations</a>"
        "<a href='/docs'>API docs</a>"
        f"{_user_form(user_id)}</header><main>{body}</main></body></html>"
    )


def _user_form(value: str = "") -> str:
    return (
        f"<form action='{DASHBOARD}/users' method='get'><label for='user_id' class='muted'>user</label>"
        f"<input id='user_id' name='user_id' required maxlength='200' placeholder='user-1' value='{e(value)}'>"
        "<button type='submit'>explore</button></form>"
    )


def _html(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/html",
                        headers={"Content-Security-Policy": _CSP, "Cache-Control": "no-store"})


# -- the chart -----------------------------------------------------------------------------------


def ndcg_chart(versions: list[dict[str, Any]], width: int = 760, height: int = 280) -> str:
    """Held-out NDCG@100 of each published version over its publication time (one point each, a
    line per model name) and popularity's on the same hold-out (grey rings), as inline SVG."""
    points = []
    for doc in versions:
        holdout = (doc.get("metrics") or {}).get("holdout") or {}
        baseline = (doc.get("metrics") or {}).get("popularity") or {}
        moment = _epoch(doc.get("published_at"))
        if moment is None or NDCG not in holdout:
            continue
        points.append((moment, float(holdout[NDCG]), baseline.get(NDCG), doc))
    if not points:
        return "<p class='muted'>no published version has held-out metrics yet: nothing to chart</p>"
    left, right, top, bottom = 64, 16, 16, 44
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    if x1 - x0 < 60:
        x0, x1 = x0 - 3600, x1 + 3600
    y1 = max([p[1] for p in points] + [float(p[2]) for p in points if p[2] is not None]) * 1.15 or 0.01
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(t: float) -> float:
        return left + plot_w * (t - x0) / (x1 - x0)

    def y(v: float) -> float:
        return top + plot_h * (1.0 - v / y1)

    out = [f"<svg width='{width}' height='{height}' viewBox='0 0 {width} {height}' "
           "role='img' aria-labelledby='ndcg-title' font-family='system-ui,sans-serif' font-size='11'>",
           "<title id='ndcg-title'>Held-out NDCG@100 per published version, against popularity</title>",
           f"<rect x='{left}' y='{top}' width='{plot_w}' height='{plot_h}' fill='#fbfcfe' stroke='#dde3ee'/>"]
    for i in range(5):
        value = y1 * i / 4
        out.append(f"<line x1='{left}' x2='{left + plot_w}' y1='{y(value):.1f}' y2='{y(value):.1f}' stroke='#e6eaf2'/>"
                   f"<text x='{left - 6}' y='{y(value) + 4:.1f}' text-anchor='end' fill='#56607a'>{value:.3f}</text>")
    for i, anchor in enumerate(("start", "middle", "middle", "end")):
        moment = x0 + (x1 - x0) * i / 3
        label = datetime.fromtimestamp(moment, UTC).strftime("%m-%d %H:%M")
        out.append(f"<text x='{x(moment):.1f}' y='{top + plot_h + 16}' text-anchor='{anchor}' fill='#56607a'>{e(label)}</text>")
    out.append(f"<text x='{left + plot_w / 2:.0f}' y='{height - 6}' text-anchor='middle' fill='#56607a'>published (UTC)</text>"
               f"<text x='14' y='{top + plot_h / 2:.0f}' text-anchor='middle' fill='#56607a' "
               f"transform='rotate(-90 14 {top + plot_h / 2:.0f})'>NDCG@100</text>")
    names = sorted({str(p[3].get("model")) for p in points})
    for index, name in enumerate(names):
        color = _COLORS[index % len(_COLORS)]
        mine = sorted((p for p in points if str(p[3].get("model")) == name), key=lambda p: p[0])
        if len(mine) > 1:
            line = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v, _, _ in mine)
            out.append(f"<polyline points='{line}' fill='none' stroke='{color}' stroke-width='2'/>")
        for t, v, base, doc in mine:
            tip = f"{name} {doc.get('model_version')} ({doc.get('algorithm')}): NDCG@100 {v:.4f}"
            if base is not None:
                tip += f", popularity {float(base):.4f}"
                ring = f"popularity on the hold-out of {doc.get('model_version')}: {float(base):.4f}"
                out.append(f"<circle cx='{x(t):.1f}' cy='{y(float(base)):.1f}' r='4' fill='none' stroke='#8a93a6' "
                           f"stroke-width='1.5'><title>{e(ring)}</title></circle>")
            out.append(f"<circle cx='{x(t):.1f}' cy='{y(v):.1f}' r='5' fill='{color}' class='version-point'>"
                       f"<title>{e(tip)}</title></circle>")
    legend_x = left + 8
    for index, name in enumerate(names):
        color = _COLORS[index % len(_COLORS)]
        out.append(f"<circle cx='{legend_x + 4}' cy='{top + 12 + 16 * index}' r='5' fill='{color}'/>"
                   f"<text x='{legend_x + 14}' y='{top + 16 + 16 * index}'>{e(name)} (held-out)</text>")
    row = top + 12 + 16 * len(names)
    out.append(f"<circle cx='{legend_x + 4}' cy='{row}' r='4' fill='none' stroke='#8a93a6' stroke-width='1.5'/>"
               f"<text x='{legend_x + 14}' y='{row + 4}'>popularity, same hold-out</text></svg>")
    return "".join(out)


# -- sections ------------------------------------------------------------------------------------


def _gate(doc: dict[str, Any]) -> tuple[str, str]:
    """(css class, verdict) of the quality gate for a published version."""
    metrics = doc.get("metrics") or {}
    mine = (metrics.get("holdout") or {}).get(NDCG)
    base = (metrics.get("popularity") or {}).get(NDCG)
    if mine is None or base is None:
        return "warn", "no hold-out (too little data): published with --force"
    if float(mine) > float(base):
        return "ok", "passed: beats popularity"
    return "warn", "published with --force: does not beat popularity"


def _params(params: dict[str, Any] | None) -> str:
    """Scalar parameters inline; nested ones (a blend's components) folded, in full as JSON."""
    params = params or {}
    if not params:
        return "—"
    short = ", ".join(f"{k}={v}" if isinstance(v, str | int | float | bool) else f"{k}=…" for k, v in sorted(params.items()))
    if all(isinstance(v, str | int | float | bool) for v in params.values()):
        return e(short)
    full = json.dumps(params, indent=1, sort_keys=True, default=str)
    return f"<details><summary>{e(short)}</summary><pre>{e(full)}</pre></details>"


def _other_metrics(values: dict[str, Any] | None) -> str:
    shown = [f"{k} {float(v):.4f}" for k, v in sorted((values or {}).items())
             if k != NDCG and isinstance(v, int | float)]
    return " · ".join(shown) or "—"


class Dashboard:
    def __init__(self, container: Container, service: QueryService, metrics: Metrics,
                 experiments: ExperimentQueries | None = None):
        self.container = container
        self.service = service
        self.metrics = metrics
        self.experiments = experiments
        self.rates = RateSampler()
        self.started = time.time()

    # -- popularity --

    async def popularity(self) -> str:
        types = list(self.service.registry.names)
        lists = await asyncio.gather(*(
            self.service.popularity(kind, window, limit=LIST_LENGTH) for kind in types for window in WINDOWS
        ), return_exceptions=True)
        out = [f"<p class='muted'>Top {LIST_LENGTH} per item type and window; windowed scores decay with a half-life of "
               f"{e(f'{self.service.settings.popularity_half_life_days:g}')} days (<code>/v1/popularity/{{type}}?window=</code>).</p>"]
        for index, kind in enumerate(types):
            cards = []
            for offset, window in enumerate(WINDOWS):
                result = lists[index * len(WINDOWS) + offset]
                content = _problem(f"popularity {kind} {window}", result) if isinstance(result, BaseException) \
                    else _ranked_list(result.items, show_type=False)
                cards.append(f"<div class='card' data-window='{e(window)}'><h3>{e(kind)} · {e(window)}</h3>{content}</div>")
            out.append(f"<h3>{e(kind)}</h3><div class='grid windows'>{''.join(cards)}</div>")
        return "".join(out)

    # -- models --

    async def versions(self) -> list[dict[str, Any]]:
        """Every published version of every model name (the registry keeps them all)."""
        store = self.container.store
        keys = await store.keys(recommendations_view.MODELS_SPACE)
        docs = await store.get_docs(recommendations_view.MODELS_SPACE, keys) if keys else []
        return sorted((d for d in docs if d), key=lambda d: (_epoch(d.get("published_at")) or 0.0, d["model_version"]))

    async def models(self) -> str:
        versions, current = await asyncio.gather(self.versions(), self.service.models())
        if not versions:
            return "<p class='muted'>no model published yet (<code>movieaugur train</code>)</p>"
        answering = {(m["model"], m["model_version"]) for m in current}
        rows = []
        for doc in reversed(versions):
            metrics = doc.get("metrics") or {}
            holdout, base = metrics.get("holdout") or {}, metrics.get("popularity") or {}
            mine, theirs = holdout.get(NDCG), base.get(NDCG)
            delta = "—" if mine is None or theirs is None else f"{float(mine) - float(theirs):+.4f}"
            css, verdict = _gate(doc)
            now = " <span class='tag'>answers now</span>" if (doc["model"], doc["model_version"]) in answering else ""
            rows.append(
                f"<tr><td>{e(doc['model'])}{now}</td><td><code>{e(doc['model_version'])}</code></td>"
                f"<td>{e(doc.get('algorithm') or '—')}</td><td class='meta'>{_params(doc.get('params'))}</td>"
                f"<td class='n'>{e(doc.get('users', '—'))}</td><td class='n'>{e(doc.get('items', '—'))}</td>"
                f"<td>{e(_when(doc.get('published_at')))}</td>"
                f"<td class='n'>{e(_number(None if mine is None else float(mine)))}</td>"
                f"<td class='n'>{e(_number(None if theirs is None else float(theirs)))}</td><td class='n'>{e(delta)}</td>"
                f"<td class='{css}'>{e(verdict)}</td></tr>"
                f"<tr class='sub'><td></td><td colspan='10' class='meta'>other metrics — held-out: {e(_other_metrics(holdout))}"
                f" | popularity: {e(_other_metrics(base))} | validation (model selection): "
                f"{e(_other_metrics(metrics.get('selection')))}</td></tr>"
            )
        table = ("<table><tr><th>model</th><th>version</th><th>algorithm</th><th>parameters</th><th>users</th><th>items</th>"
                 "<th>published</th><th>NDCG@100 held-out</th><th>popularity</th><th>Δ</th><th>gate</th></tr>"
                 + "".join(rows) + "</table>")
        return (
            "<p class='muted'>Every published version, newest first. The trainer publishes a version only when its held-out "
            "NDCG@100 beats popularity's on the same hold-out (the gate) unless forced; refused versions never reach the "
            "registry. The version that answers for a name is the latest published.</p>"
            + ndcg_chart(versions) + table
        )

    async def experiments_html(self) -> str:
        report = await self.experiments.report() if self.experiments is not None else []
        return experiments_section(report, self.service.settings.experiment_conversion_actions)

    # -- operations --

    async def projectors(self) -> list[tuple[str, dict[str, int]]]:
        """(name as in the lag gauge, positions per source) of every projector this process knows."""
        local = self.container.local_projectors
        out = []
        for projector in [*self.container.projectors(), *local]:
            name = projector.name if projector not in local else f"local-{projector.name}"
            try:
                positions = await asyncio.wait_for(projector.store.positions(projector.name), 5.0)
            except Exception as error:
                log.warning("dashboard: positions of %s unavailable: %r", name, error)
                positions = {}
            out.append((name, positions))
        return out

    async def log_ends(self) -> dict[str, float]:
        ends: dict[str, float] = {}
        for stream in STREAMS:
            try:
                offsets = await asyncio.wait_for(self.container.log.end_offsets(stream), 5.0)
            except Exception as error:
                log.warning("dashboard: end offsets of %s unavailable: %r", stream, error)
                continue
            ends[stream] = float(sum(offsets.values()))
        return ends

    async def operations(self) -> str:
        for refresh in self.metrics.before_scrape:  # what /metrics runs: the projectors' lag into its gauge
            await refresh()
        lag = {(labels["projection"], labels["partition"]): value
               for labels, value in _samples(self.metrics.projection_lag, suffix="")}
        projectors, ends = await asyncio.gather(self.projectors(), self.log_ends())
        totals = counter_totals(self.metrics)
        totals.update({f"log:{stream}": value for stream, value in ends.items()})
        now = time.time()
        span, rates = self.rates.observe(now, totals)
        about = (f"per minute over the last {span:.0f} s (this load against an earlier one this process kept in memory)"
                 if span is not None else "per minute: needs an earlier sample — reload this page in a few seconds")
        parts = [f"<p class='muted'>Counters are this process's, since it started {e(_when(self.started))} "
                 f"({now - self.started:,.0f} s ago); rates are {e(about)}. In distributed mode the command service "
                 "counts appends and rejections (its own <code>/metrics</code>); the log's totals come from the log itself.</p>"]

        rows = []
        for name, positions in projectors:
            sources = sorted({source for (proj, source) in lag if proj == name} | set(positions))
            if not sources:
                rows.append(f"<tr><td>{e(name)}</td><td colspan='4' class='muted'>no position or lag known</td></tr>")
            for source in sources:
                behind = lag.get((name, source))
                at = positions.get(source)
                end = None if behind is None or at is None else at + behind
                css = "ok" if behind == 0 else "warn"
                rows.append(f"<tr><td>{e(name)}</td><td>{e(source)}</td><td class='n'>{e('—' if at is None else _count(at))}</td>"
                            f"<td class='n'>{e('—' if end is None else _count(end))}</td>"
                            f"<td class='n {css}'>{e('—' if behind is None else _count(behind))}</td></tr>")
        parts.append("<h3>Projectors</h3><table><tr><th>projection</th><th>partition</th><th>applied up to (offset)</th>"
                     "<th>log end</th><th>lag (offsets)</th></tr>" + "".join(rows) + "</table>")

        rows = []
        for stream in STREAMS:
            in_log = ends.get(stream)
            rows.append(f"<tr><td>{e(stream)}</td><td class='n'>{e('—' if in_log is None else _count(in_log))}</td>"
                        f"<td class='n'>{e(_rate(rates, f'log:{stream}', span))}</td>"
                        f"<td class='n'>{e(_count(totals.get(f'appended:{stream}', 0.0)))}</td>"
                        f"<td class='n'>{e(_rate(rates, f'appended:{stream}', span))}</td></tr>")
        parts.append("<h3>Ingest</h3><p class='muted'>The log's end offset is the offset its next event gets, summed over "
                     "partitions: it counts offsets, not events (the embedded log numbers from 1; Kafka's transaction markers "
                     "take offsets too), so its per-minute rate is the ingest rate of all writers, give or take markers.</p>"
                     "<table><tr><th>stream</th><th>log end offset</th><th>per minute</th>"
                     "<th>appended by this process since start</th><th>per minute</th></tr>" + "".join(rows) + "</table>")

        classes = sorted(key for key in totals if key.startswith("requests:"))
        answered = sum(totals[key] for key in classes)
        rows = []
        for key in classes:
            share = 100.0 * totals[key] / answered if answered else 0.0
            css = "error" if key.startswith("requests:5") else ("warn" if key.startswith("requests:4") else "")
            rows.append(f"<tr><td class='{css}'>{e(key.split(':', 1)[1])}</td><td class='n'>{e(_count(totals[key]))}</td>"
                        f"<td class='n'>{share:.1f}%</td><td class='n'>{e(_rate(rates, key, span))}</td></tr>")
        parts.append("<h3>Requests by status class</h3><table><tr><th>status</th><th>since start</th><th>share</th>"
                     "<th>per minute</th></tr>" + "".join(rows) + "</table>")

        rejected = sorted(key for key in totals if key.startswith("rejected:"))
        rows = [f"<tr><td>{e(key.split(':', 1)[1])}</td><td class='n'>{e(_count(totals[key]))}</td>"
                f"<td class='n'>{e(_rate(rates, key, span))}</td></tr>" for key in rejected]
        if not rows:
            rows = ["<tr><td colspan='3' class='muted'>none since start</td></tr>"]
        parts.append("<h3>Rejected write batches by reason</h3><table><tr><th>reason</th><th>since start</th>"
                     "<th>per minute</th></tr>" + "".join(rows) + "</table>")
        parts.append(f"<p>Recommendation answers served by the popularity fallback (API routes): "
                     f"{e(_count(totals.get('fallbacks', 0.0)))} since start, {e(_rate(rates, 'fallbacks', span))} per minute.</p>")
        return "".join(parts)

    # -- pages --

    async def overview(self) -> str:
        popularity, models, experiments, operations = await asyncio.gather(
            _guarded("popularity", self.popularity()),
            _guarded("model registry", self.models()),
            _guarded("experiments", self.experiments_html()),
            _guarded("operations", self.operations()),
        )
        return _page("MovieAugur dashboard", (
            f"<section id='popularity'><h2>Popularity</h2>{popularity}</section>"
            f"<section id='users'><h2>User explorer</h2><p>History and every model's recommendations for one user: "
            f"{_user_form()}</p></section>"
            f"<section id='models'><h2>Model registry</h2>{models}</section>"
            f"<section id='experiments'><h2>A/B experiments</h2>{experiments}</section>"
            f"<section id='operations'><h2>Operations</h2>{operations}</section>"
        ))

    async def history(self, user_id: str) -> str:
        items = await self.service.history(user_id, limit=HISTORY_LENGTH)
        if not items:
            return "<p class='muted'>no interactions known for this user</p>"
        rows = "".join(
            f"<tr data-item='{e(i.get('object_type'))}:{e(i.get('id'))}'><td>{e(_when(i.get('last_interaction')))}</td>"
            f"<td>{e(i.get('object_type'))}</td><td class='title'>{e(i.get('title') or i.get('id'))}</td>"
            f"<td class='meta'>{e(str(i.get('release_date') or '')[:4])}</td>"
            f"<td class='meta'>{e(' · '.join(str(c) for c in i.get('categories') or ()))}</td></tr>"
            for i in items
        )
        return (f"<p class='muted'>Latest {HISTORY_LENGTH} items first (the time is the latest interaction).</p>"
                "<table><tr><th>last interaction</th><th>type</th><th>title</th><th>year</th><th>categories</th></tr>"
                f"{rows}</table>")

    async def _fallback(self, user_id: str) -> Ranked:
        """What a user the models have nothing for gets: the most popular items of all time of every
        type, those the user has seen left out (the query service's fallback rule, from its public reads)."""
        per_type = await asyncio.gather(*(
            self.service.popularity(kind, "all", limit=3 * LIST_LENGTH) for kind in self.service.registry.names
        ))
        items = [item for ranked in per_type for item in ranked.items]
        seen = await self.service.seen_among(user_id, [f"{i['object_type']}:{i['id']}" for i in items])
        unseen = [i for i in items if f"{i['object_type']}:{i['id']}" not in seen]
        unseen.sort(key=lambda i: -float(i.get("score", 0.0)))
        return Ranked(unseen[:LIST_LENGTH], fallback="popularity")

    async def recommendations(self, user_id: str) -> str:
        published = await self.service.models()

        async def column(model: dict[str, Any] | None) -> str:
            if model is None:
                head = "<h3>popularity fallback</h3><div class='meta'>most popular of all time, seen items left out</div>"
                ranked = await self._fallback(user_id)
            else:
                head = (f"<h3>{e(model['model'])}</h3><div class='meta'>version <code>{e(model['model_version'])}</code> · "
                        f"{e(model.get('algorithm') or '')}</div>")
                ranked = await self.service.recommendations(user_id, model=model["model"], limit=LIST_LENGTH)
                if ranked.fallback:
                    head += f"<div class='warn'>this model has nothing for this user: {e(ranked.fallback)} fallback</div>"
            name = "popularity" if model is None else model["model"]
            return f"<div class='card' data-model='{e(name)}'>{head}{_ranked_list(ranked.items)}</div>"

        columns = await asyncio.gather(*(_guarded("recommendations", column(m)) for m in [*published, None]))
        note = "" if published else "<p class='muted'>no model published yet: only the fallback</p>"
        return note + "<div class='grid'>" + "".join(columns) + "</div>"

    async def user(self, user_id: str) -> str:
        history, recommendations = await asyncio.gather(
            _guarded("history", self.history(user_id)),
            _guarded("recommendations", self.recommendations(user_id)),
        )
        quoted = quote(user_id, safe="")
        api = " · ".join(
            f"<a href='{e(href)}'>{e(label)}</a>" for label, href in (
                ("history JSON", f"/v1/users/{quoted}/history"),
                ("recommendations JSON", f"/v1/users/{quoted}/recommendations"),
            )
        )
        # TODO(issue 14, lists): another engineer is adding GET /v1/users/{user_id}/lists and its
        # QueryService method; once it is in, render the user's lists here by calling that method.
        lists = ("<section id='lists'><h2>Lists</h2><div class='placeholder'>Lists are not shown yet: "
                 "<code>GET /v1/users/{user_id}/lists</code> is being added to the query service; this section "
                 "will show them once it is.</div></section>")
        return _page(f"User {user_id} · MovieAugur", (
            f"<section id='user'><h2>User <code class='user-id'>{e(user_id)}</code></h2><p class='muted'>{api}</p></section>"
            f"<section id='recommendations'><h2>Recommendations</h2><p class='muted'>Each published model's list "
            f"(seen items filtered, as the API serves it) side by side with the popularity fallback.</p>{recommendations}</section>"
            f"{lists}"
            f"{user_variants(self.experiments.experiments if self.experiments else {}, user_id)}"
            f"<section id='history'><h2>History</h2>{history}</section>"
        ), user_id)


def add_dashboard_routes(app: web.Application, container: Container, service: QueryService, metrics: Metrics) -> None:
    """GET /dashboard, /dashboard/users (the form's target: redirects) and /dashboard/users/{user_id}."""
    dashboard = Dashboard(container, service, metrics, app.get(EXPERIMENTS))

    async def overview(_: web.Request) -> web.Response:
        return _html(await dashboard.overview())

    async def jump(request: web.Request) -> web.Response:
        user_id = request.query.get("user_id", "").strip()
        target = f"{DASHBOARD}/users/{quote(user_id, safe='')}" if user_id else DASHBOARD
        raise web.HTTPFound(target)

    async def user(request: web.Request) -> web.Response:
        return _html(await dashboard.user(request.match_info["user_id"]))

    app.router.add_get(DASHBOARD, overview)
    app.router.add_get(DASHBOARD + "/users", jump)
    app.router.add_get(DASHBOARD + "/users/{user_id}", user)

