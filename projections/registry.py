"""The projections the system runs, built from configuration."""

from __future__ import annotations

from domain.weights import ActionWeights
from projections.arrivals import ArrivalsProjection
from projections.base import Projection
from projections.catalog import CatalogProjection
from projections.experiments import ExperimentsProjection
from projections.history import HistoryProjection
from projections.lists import ListsProjection
from projections.matrix import UserItemMatrixProjection
from projections.notifications import NotificationsProjection
from projections.popularity import PopularityProjection
from projections.recommendations import RecommendationsProjection


def build_projections(weights: ActionWeights) -> dict[str, Projection]:
    projections: list[Projection] = [
        PopularityProjection(weights),
        HistoryProjection(),
        CatalogProjection(),
        RecommendationsProjection(),
        UserItemMatrixProjection(weights),
        ListsProjection(),
        ArrivalsProjection(),
        NotificationsProjection(),
        ExperimentsProjection(),
    ]
    return {p.name: p for p in projections}
