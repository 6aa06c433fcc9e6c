"""The user × item matrix, built from the whole interaction log.

Training reads every interaction from the start of the log on every run (never from a committed
consumer offset: a job that only saw new events would train on a fraction). Each event counts
once (by event_id), with its configured action weight and an optional time decay; a pair whose
weights sum to zero or less (disliked, or rated low) is not a positive. Interactions an operator
redacted (domain/redactions.py) are left out, and no non-finite or outsized weight reaches a model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from domain.events import INTERACTIONS, REDACTIONS, EventsRedacted, InteractionRecorded
from domain.ports import EventLog
from domain.redactions import Redactions
from domain.weights import ActionWeights, UnknownAction

#: A (user, item) pair's summed weight is capped here (about 30 likes): a bot repeating one
#: action cannot give one pair a confidence that dominates the solver.
MAX_PAIR_WEIGHT = 100.0


@dataclass
class InteractionMatrix:
    """Weighted positives: rows are users, columns "item_type:item_id" keys."""

    matrix: sp.csr_matrix  # float32, > 0 only
    users: list[str]
    items: list[str]
    events: int
    duplicates: int
    latest: int  # unix seconds of the newest event


async def load_interactions(
    log: EventLog,
    weights: ActionWeights,
    half_life_days: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> InteractionMatrix:
    redactions = Redactions()
    async for logged in log.scan(REDACTIONS):
        if isinstance(logged.event, EventsRedacted):
            redactions.add(logged.event)
    seen: set[str] = set()
    user_index: dict[str, int] = {}
    item_index: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    times: list[int] = []
    duplicates = 0
    count = 0
    async for logged in log.scan(INTERACTIONS):
        event = logged.event
        if not isinstance(event, InteractionRecorded):
            continue
        if event.event_id in seen:
            duplicates += 1
            continue
        seen.add(event.event_id)
        if redactions and redactions.covers(event):
            continue
        try:
            weight = weights.weight(event.action, event.value)
        except UnknownAction:
            continue  # an action no longer configured counts for nothing
        if not math.isfinite(weight) or weight == 0.0:
            continue
        rows.append(user_index.setdefault(event.user_id, len(user_index)))
        cols.append(item_index.setdefault(event.item_key, len(item_index)))
        vals.append(weight)
        times.append(event.occurred_at)
        count += 1
        if progress and count % 10_000 == 0:
            progress(10_000)
    if progress:
        progress(count % 10_000)
    matrix, latest = pair_matrix(
        np.asarray(rows, dtype=np.int64),
        np.asarray(cols, dtype=np.int64),
        np.asarray(vals, dtype=np.float64),
        np.asarray(times, dtype=np.int64),
        (len(user_index), len(item_index)),
        half_life_days,
    )
    return InteractionMatrix(
        matrix=matrix,
        users=list(user_index),
        items=list(item_index),
        events=count,
        duplicates=duplicates,
        latest=latest,
    )


def pair_matrix(
    rows: np.ndarray,
    cols: np.ndarray,
    values: np.ndarray,
    stamps: np.ndarray,
    shape: tuple[int, int],
    half_life_days: float | None = None,
) -> tuple[sp.csr_matrix, int]:
    """Weighted events (in log order) → the capped float32 user × item matrix, and the newest time.

    Shared by the log scan above and the columnar snapshot (offline/training/snapshot.py), so both
    sum, decay, clip and cap exactly alike and give bit-identical matrices for the same events.
    """
    values = np.asarray(values, dtype=np.float64)
    latest = int(stamps.max()) if stamps.size else 0
    if half_life_days and stamps.size:
        values = values * 0.5 ** ((latest - stamps) / (half_life_days * 86_400))
    summed = sp.coo_matrix((values, (rows, cols)), shape=shape).tocsr()  # duplicates of a pair are summed here
    summed.data[summed.data < 0] = 0.0
    np.minimum(summed.data, MAX_PAIR_WEIGHT, out=summed.data)
    summed.eliminate_zeros()
    matrix = summed.astype(np.float32)
    matrix.sort_indices()
    return matrix, latest
