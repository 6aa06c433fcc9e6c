"""The dashboard's A/B experiments section: per variant, its model and share, lists served,
clicks, conversions and the two rates, with a bar per rate so the better variant shows at a glance.

A module of its own so the dashboard page module does not grow; it renders the report that
`GET /v1/experiments` answers (queries/experiments.py), so the page and the JSON never disagree.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from kernel.experiments import Experiment


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _bar(rate: float, top: float) -> str:
    width = 0.0 if top <= 0 else max(0.0, min(100.0, 100.0 * rate / top))
    return f"<span class='bar'><span style='width:{width:.1f}%'></span></span>"


def experiments_section(report: list[dict[str, Any]], conversion_actions: tuple[str, ...]) -> str:
    """HTML for every experiment of the report (a line saying how to start one when there is none)."""
    if not report:
        return ("<p class='muted'>no experiment configured (<code>MOVIEAUGUR_EXPERIMENTS</code>); lists are served "
                "with a recommendation id but counted in no variant</p>")
    out = [f"<p class='muted'>Click-through: clicks per list served; conversion: "
           f"{_e(', '.join(conversion_actions))} per list served. Counted from the log (the experiments view), "
           f"attributed by the <code>recommendation_id</code> clients send back; <code>GET /v1/experiments</code> "
           f"has the same numbers.</p>"]
    for experiment in report:
        variants = experiment["variants"]
        top_ctr = max((v["click_through_rate"] for v in variants), default=0.0)
        top_cvr = max((v["conversion_rate"] for v in variants), default=0.0)
        rows = "".join(
            f"<tr data-variant='{_e(v['variant'])}'><td>{_e(v['variant'])}</td><td>{_e(v['model'] or '—')}</td>"
            f"<td class='n'>{v['share']:.2f}</td><td class='n exposures'>{v['exposures']:,}</td>"
            f"<td class='n clicks'>{v['clicks']:,}</td><td class='n conversions'>{v['conversions']:,}</td>"
            f"<td class='n ctr'>{v['click_through_rate']:.4f} {_bar(v['click_through_rate'], top_ctr)}</td>"
            f"<td class='n cvr'>{v['conversion_rate']:.4f} {_bar(v['conversion_rate'], top_cvr)}</td></tr>"
            for v in variants
        )
        notes = []
        if experiment["default"]:
            notes.append("<span class='tag'>default</span>")
        if not experiment["configured"]:
            notes.append("<span class='tag'>no longer configured</span>")
        out.append(
            f"<h3 data-experiment='{_e(experiment['experiment'])}'>{_e(experiment['experiment'])} {' '.join(notes)}</h3>"
            "<table><tr><th>variant</th><th>model</th><th>share</th><th>lists served</th><th>clicks</th>"
            f"<th>conversions</th><th>click-through</th><th>conversion rate</th></tr>{rows}</table>"
        )
    return "".join(out)


def user_variants(experiments: Mapping[str, Experiment], user_id: str) -> str:
    """The user's variant in every configured experiment (the same stable hash the API uses)."""
    if not experiments:
        return ""
    rows = "".join(
        f"<tr data-experiment='{_e(name)}'><td>{_e(name)}</td><td class='variant'>{_e(v.name)}</td><td>{_e(v.model)}</td></tr>"
        for name, experiment in experiments.items() for v in [experiment.assign(user_id)]
    )
    return ("<section id='user-experiments'><h2>A/B variants</h2><p class='muted'>What "
            "<code>?experiment=</code> serves this user.</p><table><tr><th>experiment</th><th>variant</th>"
            f"<th>model</th></tr>{rows}</table></section>")
