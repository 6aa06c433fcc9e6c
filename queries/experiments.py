"""A/B experiments on the read side: serve each user their variant's model, give every /v1 list a
recommendation id, queue the exposure, and report per-variant counts (JSON, /metrics, dashboard).

Which experiment applies: `?experiment=NAME`, else the default experiment when the request names
no model (`MOVIEAUGUR_DEFAULT_EXPERIMENT`), else none (the list still gets a recommendation id, with
`variant` null, and no exposure is recorded). A variant whose model is not published (yet) is
served by the default model rather than failing: the user stays in the variant, and the exposure
records the model that actually answered, so the report can tell.
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from kernel.experiments import Experiment, Variant, new_recommendation_id
from projections import experiments as experiments_view
from queries.exposures import ExposureRecorder
from queries.service import NotFound, QueryService, Ranked

log = logging.getLogger(__name__)


class ExperimentQueries:
    def __init__(self, service: QueryService, exposures: ExposureRecorder | None, registry: CollectorRegistry):
        """`exposures`: where served lists are queued for the log (None: exposures are not
        recorded, MOVIEAUGUR_EXPOSURE_LOG=false). `registry`: the process's Prometheus registry."""
        self.service = service
        self.settings = service.settings
        self.experiments: dict[str, Experiment] = self.settings.experiment_specs()
        self.exposures = exposures
        labels = ["experiment", "variant"]
        self.gauges = {
            name: Gauge(f"movieaugur_experiment_{name}", text, labels, registry=registry)
            for name, text in (
                ("exposures", "Lists served in the variant (from the experiments view)"),
                ("clicks", "Clicks attributed to the variant's lists"),
                ("conversions", "Conversion actions (MOVIEAUGUR_EXPERIMENT_CONVERSION_ACTIONS) attributed to the variant"),
                ("click_through_rate", "Clicks per list served in the variant"),
                ("conversion_rate", "Conversions per list served in the variant"),
            )
        }

    def choose(self, user_id: str, experiment: str | None, model: str | None) -> tuple[Experiment, Variant] | None:
        """The experiment and variant this request is served in, if any."""
        name = experiment or (self.settings.default_experiment if model is None else "")
        if not name:
            return None
        found = self.experiments.get(name)
        if found is None:
            known = ", ".join(self.experiments) or "none configured"
            raise NotFound(f"unknown experiment {name!r}; configured: {known}")
        return found, found.assign(user_id)

    async def recommend(
        self,
        user_id: str,
        experiment: str | None,
        model: str | None,
        item_type: str | None,
        limit: int,
        exclude: frozenset[str],
    ) -> tuple[Ranked, dict[str, Any]]:
        """The user's list and its attribution fields (`recommendation_id`, `experiment`, `variant`)."""
        chosen = self.choose(user_id, experiment, model)
        if chosen is None:
            ranked = await self.service.recommendations(user_id, model, item_type, limit, exclude)
            return ranked, {"recommendation_id": new_recommendation_id(), "experiment": None, "variant": None}
        found, variant = chosen
        try:
            ranked = await self.service.recommendations(user_id, variant.model, item_type, limit, exclude)
        except NotFound:
            if await self.service.model(variant.model) is not None:
                raise  # the model is known: nothing at all to serve, fallbacks included
            log.warning("experiment %s variant %s: model %r is not published; the default model answers",
                        found.name, variant.name, variant.model)
            ranked = await self.service.recommendations(user_id, None, item_type, limit, exclude)
        recommendation_id = new_recommendation_id(found.name, variant.name)
        if self.exposures is not None:
            self.exposures.record({
                "recommendation_id": recommendation_id, "user_id": user_id, "experiment": found.name,
                "variant": variant.name, "model": ranked.model or variant.model, "model_version": ranked.model_version,
                "fallback": ranked.fallback, "items": [f"{item['object_type']}:{item['id']}" for item in ranked.items],
            })
        return ranked, {"recommendation_id": recommendation_id, "experiment": found.name, "variant": variant.name}

    async def report(self) -> list[dict[str, Any]]:
        """Every configured experiment (and any the log names that no longer is), each variant
        with its model, share, counts and rates."""
        names = list(self.experiments)
        names += [n for n in await experiments_view.read_experiment_names(self.service.store) if n not in self.experiments]
        conversions = self.settings.experiment_conversion_actions
        out = []
        for name in names:
            counts = await experiments_view.read_counts(self.service.store, name)
            configured = self.experiments.get(name)
            variants = []
            for variant in configured.variants if configured else ():
                row = {"variant": variant.name, "model": variant.model, "share": variant.share}
                variants.append(row | experiments_view.variant_stats(counts.pop(variant.name, {}), conversions))
            for gone in sorted(counts):  # variants the log names that the configuration no longer has
                variants.append({"variant": gone, "model": None, "share": 0.0}
                                | experiments_view.variant_stats(counts[gone], conversions))
            out.append({"experiment": name, "configured": configured is not None,
                        "default": name == self.settings.default_experiment, "variants": variants})
        return out

    async def refresh_metrics(self) -> list[dict[str, Any]]:
        """The report into the experiment gauges (run before each /metrics scrape); also returned."""
        report = await self.report()
        for experiment in report:
            for variant in experiment["variants"]:
                for name, gauge in self.gauges.items():
                    gauge.labels(experiment["experiment"], variant["variant"]).set(variant[name])
        return report
