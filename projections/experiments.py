"""Per-variant counts of A/B experiments: lists served (exposures) and the interactions attributed
to them, per action — the numbers click-through and conversion rates are computed from.

One sorted set per experiment; its members are `<variant>:<counter>` and their scores the counts:
- `RecommendationsServed` (a flush's lists) adds, per variant, the lists to `<variant>:exposures`
  and their lengths to `<variant>:items`;
- an `InteractionRecorded` whose `recommendation_id` names an experiment and variant
  (kernel/experiments.py) adds 1 to `<variant>:action:<action>`.
Both are `ScoreAdd`s guarded by the event id, so a redelivered event counts once and a replay
rebuilds the same counts in every store (SQLite, Redis, MongoDB). Attribution is read from the
click event alone: the projection never joins a click to its exposure, which is what keeps it a
pure function of one event. Rates are computed when reading (`variant_stats`), so which actions
count as a conversion is configuration, not part of the view.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any, ClassVar

from domain.events import INTERACTIONS, InteractionRecorded, MovieAugurEvent, RecommendationsServed
from kernel.experiments import attribution
from projections.base import NO_EFFECT, Projection
from projections.changes import Effect, ScoreAdd, ViewStore

SPACE = "experiments"
EXPOSURES = "exposures"
ITEMS = "items"
ACTION = "action:"
#: Members one read of an experiment asks for: variants x (2 + configured actions) stays far below.
_MAX_MEMBERS = 10_000


def member(variant: str, counter: str) -> str:
    """Variant names hold no ':' (kernel/experiments.py), so the first ':' splits the member."""
    return f"{variant}:{counter}"


class ExperimentsProjection(Projection):
    name: ClassVar[str] = "experiments"
    streams: ClassVar[tuple[str, ...]] = (INTERACTIONS,)
    spaces: ClassVar[tuple[str, ...]] = (SPACE,)

    def effect(self, event: MovieAugurEvent) -> Effect:
        if isinstance(event, RecommendationsServed):
            counts: dict[tuple[str, str], float] = defaultdict(float)
            for served in event.served:
                counts[served["experiment"], member(served["variant"], EXPOSURES)] += 1.0
                counts[served["experiment"], member(served["variant"], ITEMS)] += float(len(served.get("items") or ()))
            changes = tuple(ScoreAdd(SPACE, experiment, name, n) for (experiment, name), n in counts.items())
            return Effect(changes=changes, guard=event.event_id)
        if isinstance(event, InteractionRecorded) and event.recommendation_id:
            named = attribution(event.recommendation_id)
            if named is None:
                return NO_EFFECT
            experiment, variant = named
            return Effect(
                changes=(ScoreAdd(SPACE, experiment, member(variant, ACTION + event.action), 1.0),),
                guard=event.event_id,
            )
        return NO_EFFECT


# -- reading the view -------------------------------------------------------------------------------


async def read_experiment_names(store: ViewStore) -> list[str]:
    """Every experiment the log has exposures or attributed interactions for."""
    return sorted(await store.keys(SPACE))


async def read_counts(store: ViewStore, experiment: str) -> dict[str, dict[str, float]]:
    """variant -> counter -> count (`exposures`, `items`, `action:<action>`)."""
    counts: dict[str, dict[str, float]] = {}
    for name, score in await store.top(SPACE, {experiment: 1.0}, 0, _MAX_MEMBERS):
        variant, _, counter = name.partition(":")
        counts.setdefault(variant, {})[counter] = score
    return counts


def variant_stats(counts: dict[str, float], conversion_actions: Iterable[str]) -> dict[str, Any]:
    """One variant's counts and rates: click-through is clicks per list served, conversion rate
    the configured conversion actions per list served (both 0.0 before any exposure)."""
    exposures = int(counts.get(EXPOSURES, 0))
    actions = {k.removeprefix(ACTION): int(v) for k, v in sorted(counts.items()) if k.startswith(ACTION)}
    clicks = actions.get("click", 0)
    conversions = sum(actions.get(action, 0) for action in set(conversion_actions))
    return {
        "exposures": exposures,
        "items_shown": int(counts.get(ITEMS, 0)),
        "clicks": clicks,
        "conversions": conversions,
        "click_through_rate": round(clicks / exposures, 6) if exposures else 0.0,
        "conversion_rate": round(conversions / exposures, 6) if exposures else 0.0,
        "actions": actions,
    }
