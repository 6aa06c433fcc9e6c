"""The vocabulary in which projections describe view updates, and the port that stores them.

Projection logic is written once, as pure functions from an event to a list of changes. A change is
one of four data-structure operations that every store does natively: add to a score (a Redis
sorted set, an SQL upsert), keep the maximum score, remove a member (or a whole sorted set), and
replace a document. A store applies a batch
of changes together with the batch's tracking positions in one atomic step, which is what gives a
view exactly-once effect over an at-least-once log.

Changes and effects are values (nothing changes them after they are made, except the runner
stamping an effect's `at`), yet not frozen dataclasses: a frozen dataclass sets each field through
`object.__setattr__`, four times slower to build, and a projector builds two or three per event
(BENCHMARKS.md §7).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class ScoreAdd:
    """Add `delta` to member's score in the sorted set (space, key)."""

    space: str
    key: str
    member: str
    delta: float


@dataclass(slots=True)
class ScoreMax:
    """Set member's score in (space, key) to max(current, score): idempotent."""

    space: str
    key: str
    member: str
    score: float


@dataclass(slots=True)
class ScoreRemove:
    """Remove `member` from the sorted set (space, key), or, with `member` None, the whole sorted
    set. Idempotent (removing what is absent changes nothing), so it needs no guard: a batch of
    ScoreMax and ScoreRemove changes applied twice leaves what applying it once left."""

    space: str
    key: str
    member: str | None = None


@dataclass(slots=True)
class DocPut:
    """Replace the document at (space, key)."""

    space: str
    key: str
    doc: dict[str, Any]


Change = ScoreAdd | ScoreMax | ScoreRemove | DocPut


#: How many offsets of one log partition a view remembers an applied event id for, by default.
DEFAULT_GUARD_HORIZON = 1_000_000


@dataclass(slots=True)
class Effect:
    """The changes one event causes. With a guard, they apply only the first time the guard
    (the event_id) is seen by this projection: a redelivered or retried event has one effect.

    `at` is the event's offset in its partition (set by the runner for guarded effects). A store
    remembers a guard with the offset where it took effect and forgets it `horizon` offsets later
    (see Batch), so dedupe state is bounded while the outcome depends only on the log: a copy of
    an event at most `horizon` offsets after the counted one is a duplicate, a later one is not."""

    changes: tuple[Change, ...]
    guard: str | None = None
    at: int = 0


@dataclass(slots=True)
class Batch:
    """Effects of consecutive events of one partition (`source`, e.g. "interactions/2") plus
    where the projection has read up to afterwards."""

    effects: list[Effect] = field(default_factory=list)
    next_offsets: dict[str, int] = field(default_factory=dict)  # source -> next offset
    horizon: int = DEFAULT_GUARD_HORIZON
    #: source -> the offset this batch was read from. A store that can lose its data (Redis) refuses
    #: a batch read from past 0 when it has no tracking for the source: its view was lost.
    start_offsets: dict[str, int] = field(default_factory=dict)

    @property
    def source(self) -> str:
        """The one partition this batch reads (guards are remembered per partition)."""
        return next(iter(self.next_offsets), "")

    def guard_cutoff(self) -> int:
        """Guards recorded before this offset can never again mark a duplicate: forget them."""
        return max(self.next_offsets.values(), default=0) - 1 - self.horizon


class StaleTracking(RuntimeError):
    """Another runner already recorded these positions, or the store lost the view and its tracking
    (a Redis flush); this batch was not applied and the runner re-reads where to start."""


class ViewRebuilding(RuntimeError):
    """The view is being rebuilt from the log (its store lost it, or it is being built for the first
    time) and would answer with partial data: the read side answers 503 instead."""

    def __init__(self, projection: str):
        super().__init__(f"the {projection} view is being rebuilt from the event log; retry shortly")
        self.projection = projection


class ViewStore(ABC):
    """Where projections keep their views, and how the read side reads them."""

    def applies_concurrently(self, projection: str) -> bool:
        """Whether apply() may run for several of the projection's batches (of different
        partitions) at once; stores that serialise writes anyway say no."""
        return False

    def applies_in_order(self, projection: str) -> bool:
        """Whether batches handed over one after another (apply() called, not yet answered) are
        applied in that order, each refused (StaleTracking) unless it starts where the view ends:
        then the runner hands over a partition's next batch before the one ahead is answered."""
        return False

    # -- the projector side --------------------------------------------------------------------

    @abstractmethod
    async def apply(self, projection: str, batch: Batch) -> None:
        """Apply every effect and record the positions atomically, or do nothing.

        Raises StaleTracking when a position does not advance past what is recorded.
        """

    @abstractmethod
    async def positions(self, projection: str) -> dict[str, int]:
        """Per source ("stream/partition"), the next offset this projection will read."""

    @abstractmethod
    async def drop(self, projection: str, spaces: Sequence[str]) -> None:
        """Delete a projection's view and tracking, so replay rebuilds it from the start."""

    async def mark_ready(self, projection: str, positions: Mapping[str, int]) -> bool:
        """The runner has read everything the log held up to `positions`: record that the view is
        complete, if the store's tracking still says `positions` (False if not: it was lost or moved,
        and the runner re-reads it). Stores that cannot lose a view alone have nothing to record."""
        return True

    async def ready(self, projection: str) -> bool:
        """Whether the view is complete up to its tracking (False while it is rebuilt)."""
        return True

    # -- replay ----------------------------------------------------------------------------------

    def shadow(self, projection: str) -> ViewStore | None:
        """A private copy to rebuild `projection` into while the live view keeps answering, or
        None where the store has none (replay then drops the view and rebuilds it in place)."""
        return None

    async def promote(self, projection: str, spaces: Sequence[str], shadow: ViewStore) -> None:
        """Atomically replace the live view (and its tracking) by what was rebuilt in `shadow`."""
        raise NotImplementedError(f"{type(self).__name__} makes no shadows, so it has nothing to promote")

    def rebuilding_in_place(self, projection: str) -> AbstractAsyncContextManager[None]:
        """Around a replay that drops the view and rebuilds it in place (a store with no shadow): a
        store may defer work it would do per change, such as keeping a secondary index, to the end."""
        return nullcontext()

    # -- the query side ------------------------------------------------------------------------

    async def revision(self, spaces: Sequence[str]) -> Hashable | None:
        """A value that changes whenever these spaces may have changed (written by any process),
        or None where the store cannot tell cheaply. A store may answer for more than the spaces
        asked (a counter of every commit). Why: a read route whose answer depends only on views can
        keep the answer until the revision moves (queries/answers.py); between two projector
        commits every read of it is then a dictionary lookup."""
        return None

    @abstractmethod
    async def top(
        self, space: str, keys: Mapping[str, float], offset: int, limit: int
    ) -> list[tuple[str, float]]:
        """Members by descending weighted sum of their scores over `keys` (key -> weight)."""

    @abstractmethod
    async def score(self, space: str, key: str, member: str) -> float | None:
        """One member's score."""

    async def scores(self, space: str, key: str, members: Sequence[str]) -> list[float | None]:
        """Several members' scores at once (None where absent); stores override with one query."""
        return [await self.score(space, key, member) for member in members]

    @abstractmethod
    async def get_docs(self, space: str, keys: Sequence[str]) -> list[dict[str, Any] | None]:
        """Documents by key, None where missing, in the order asked."""

    @abstractmethod
    async def keys(self, space: str, prefix: str = "") -> list[str]:
        """Sorted-set and document keys of a space (used for listings such as day buckets)."""

    @abstractmethod
    async def dump(self, spaces: Sequence[str]) -> dict[str, Any]:
        """Everything in the given spaces, as plain data: for comparing a replayed view with an
        incrementally built one."""

    async def start(self) -> None:  # noqa: B027 - optional for adapters
        """Connect or prepare, where an adapter needs to before its first call."""

    async def close(self) -> None:  # noqa: B027 - optional for adapters
        """Release connections."""
