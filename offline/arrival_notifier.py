"""The arrival notifier: a reactor that follows the items stream and records new arrivals, each with
the notifications it sends.

It runs beside the projectors (movieaugur/app.py, movieaugur/serve.py), but unlike a projection it
appends events instead of writing a view. It reads the items stream from its own position, kept in
the view store's tracking under the name "arrival-notifier" (so it resumes where it stopped, and a
`replay` of the views does not reset it). For every `ItemCatalogued` whose item has not arrived
yet (the arrivals view does not know it), it decides who to tell and appends, in one atomic append,
an `ItemArrived` dated by that catalogue event and naming those users, and one `UserNotified` per
user. The ids are derived from the content: the arrival's from the item alone, each notice's from
(kind, user, item). So the decision about an item is recorded at most once, whatever happens:
- re-cataloguing an item is no arrival (the arrivals view knows the item);
- a second decision racing the first (two notifiers, a view that has not applied the arrival yet,
  a notifier run again from the start) is either the same decision, whose events are duplicates
  the log does not append again, or another one, whose arrival conflicts with the first (its
  `notified` differs) and which is dropped whole: nobody is told twice, nor told late.
Arrivals older than MOVIEAUGUR_ARRIVAL_NOTIFY_MAX_AGE_DAYS (a backfill, a first run over an old
catalog) and items without categories are recorded with nobody told.

"Suits best" is a simple, deterministic affinity: for each of the new item's categories, the number
of items in the user's history (the history view, the HISTORY_DEPTH most recent, with their
categories from the catalog) that are in it, summed; users who already interacted with the item
and users with no affinity are left out; MOVIEAUGUR_ARRIVAL_NOTIFY_USERS users at most, ties to the
smaller user id. The histories are read once per step that has arrivals (a pass over the history
view: fine for arrivals a few at a time, and a catalog loaded at once shares one pass).

Why a reactor and not an Airflow DAG: an arrival is announced a moment after it is catalogued, by
code that runs wherever projectors run (embedded too), with the same resumable, idempotent
machinery as the views; a daily DAG would announce up to a day late and need Airflow for a demo.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from domain.events import ITEMS, ItemArrived, ItemCatalogued, MovieAugurEvent, UserNotified, content_event_id
from domain.ports import EventIdConflict, EventLog
from kernel.settings import Settings
from projections import arrivals as arrivals_view
from projections import catalog as catalog_view
from projections import history as history_view
from projections.changes import Batch, StaleTracking, ViewStore

log = logging.getLogger(__name__)

NAME = "arrival-notifier"
KIND = "new_arrival"
#: How many of a user's most recent history items make their taste.
HISTORY_DEPTH = 10_000
_CATALOG_CHUNK = 900
_SECONDS_PER_DAY = 86_400


def arrival_id(item_type: str, item_id: str) -> str:
    return content_event_id("arrival", {"item_type": item_type, "item_id": item_id})


def notice_id(user_id: str, item_type: str, item_id: str) -> str:
    return content_event_id("notice", {"kind": KIND, "user_id": user_id, "item_type": item_type, "item_id": item_id})


def _split(item_key: str) -> tuple[str, str]:
    item_type, _, item_id = item_key.partition(":")
    return item_type, item_id


@dataclass
class Taste:
    """Per category (case-folded), how many history items each user has in it; what each user saw."""

    by_category: dict[str, Counter[str]] = field(default_factory=dict)
    seen: dict[str, set[str]] = field(default_factory=dict)

    def best_users(self, item: ItemCatalogued, count: int) -> list[tuple[str, int, list[str]]]:
        """(user, affinity, the item's categories the user has history in), best first."""
        categories = {c.casefold(): c for c in item.categories or ()}
        scores: Counter[str] = Counter()
        for folded in categories:
            scores.update(self.by_category.get(folded, Counter()))
        key = f"{item.item_type}:{item.item_id}"
        candidates = [(-n, user) for user, n in scores.items() if n > 0 and key not in self.seen.get(user, ())]
        chosen = []
        for negative, user in heapq.nsmallest(count, candidates):
            shared = sorted({c for folded, c in categories.items() if self.by_category.get(folded, Counter())[user]})
            chosen.append((user, -negative, shared))
        return chosen


class ArrivalNotifier:
    def __init__(self, log_: EventLog, store: ViewStore, settings: Settings, batch_size: int = 1000, idle_wait: float = 0.5):
        self.log = log_
        self.store = store
        self.settings = settings
        self.batch_size = batch_size
        self.idle_wait = idle_wait
        self.advanced = False
        self.name = NAME

    # -- one step ------------------------------------------------------------------------------

    async def step(self) -> int:
        """React to at most one batch of catalogue events per partition; return how many events
        were read. `self.advanced` tells whether a position moved."""
        self.advanced = False
        positions = await self.store.positions(NAME)
        read = 0
        for partition in await self.log.partitions(ITEMS):
            source = f"{ITEMS}/{partition}"
            start = positions.get(source, 0)
            result = await self.log.read(ITEMS, partition, start, self.batch_size)
            if result.next_offset <= start:
                continue
            await self._react([logged.event for logged in result.events])
            try:
                await self.store.apply(NAME, Batch(next_offsets={source: result.next_offset}))
            except StaleTracking:  # another notifier got there first; what we appended is a duplicate
                log.info("%s: %s was advanced by another notifier", NAME, source)
                continue
            read += len(result.events)
            self.advanced = True
        return read

    async def _react(self, events: Sequence[MovieAugurEvent]) -> None:
        first: dict[tuple[str, str], ItemCatalogued] = {}
        for event in events:
            if isinstance(event, ItemCatalogued):
                first.setdefault((event.item_type, event.item_id), event)
        new = await self._not_arrived(first)
        if not new:
            return
        wanted = self.settings.arrival_notify_users
        max_age = self.settings.arrival_notify_max_age_days * _SECONDS_PER_DAY
        now = time.time()
        taste: Taste | None = None
        decisions: list[list[MovieAugurEvent]] = []
        for item in new:
            told: list[tuple[str, int, list[str]]] = []
            if wanted > 0 and item.categories and (max_age <= 0 or now - item.timestamp.timestamp() <= max_age):
                taste = taste or await self.taste()
                told = taste.best_users(item, wanted)
            arrival = ItemArrived.new(
                event_id=arrival_id(item.item_type, item.item_id), timestamp=item.timestamp,
                item_type=item.item_type, item_id=item.item_id, categories=item.categories,
                notified=[user for user, _, _ in told],
            )
            notices = [
                UserNotified.new(
                    event_id=notice_id(user, item.item_type, item.item_id), user_id=user, kind=KIND,
                    item_type=item.item_type, item_id=item.item_id, reason={"categories": shared, "affinity": affinity},
                )
                for user, affinity, shared in told
            ]
            decisions.append([arrival, *notices])
            await asyncio.sleep(0)
        await self._append(decisions)

    async def _not_arrived(self, first: dict[tuple[str, str], ItemCatalogued]) -> list[ItemCatalogued]:
        by_type: dict[str, list[str]] = {}
        for item_type, item_id in first:
            by_type.setdefault(item_type, []).append(item_id)
        new: list[ItemCatalogued] = []
        for item_type, item_ids in by_type.items():
            known = await arrivals_view.arrival_scores(self.store, item_type, item_ids)
            new.extend(first[(item_type, i)] for i, score in zip(item_ids, known, strict=True) if score is None)
        return new

    async def _append(self, decisions: list[list[MovieAugurEvent]]) -> None:
        """All decisions in one append; a decision with an event the log holds with other content
        (the item's arrival was decided before, differently) is dropped whole, and the rest retried."""
        while decisions:
            try:
                await self.log.append([event for decision in decisions for event in decision])
                return
            except EventIdConflict as conflict:
                decisions = [d for d in decisions if all(e.event_id != conflict.event_id for e in d)]

    # -- whose taste fits --------------------------------------------------------------------

    async def taste(self) -> Taste:
        """Every user's history (the HISTORY_DEPTH most recent items) and its items' categories."""
        taste = Taste()
        histories: dict[str, list[str]] = {}
        for n, user in enumerate(await self.store.keys(history_view.SPACE)):
            rows = await history_view.read_history(self.store, user, 0, HISTORY_DEPTH)
            histories[user] = [member for member, _ in rows]
            if n % 100 == 99:
                await asyncio.sleep(0)
        items = sorted({member for members in histories.values() for member in members})
        categories: dict[str, set[str]] = {}
        for start in range(0, len(items), _CATALOG_CHUNK):
            chunk = items[start : start + _CATALOG_CHUNK]
            docs = await catalog_view.read_items(self.store, [_split(member) for member in chunk])
            for member, doc in zip(chunk, docs, strict=True):
                if doc and doc.get("categories"):
                    categories[member] = {c.casefold() for c in doc["categories"]}
        for user, members in histories.items():
            taste.seen[user] = set(members)
            for member in members:
                for category in categories.get(member, ()):
                    taste.by_category.setdefault(category, Counter())[user] += 1
        return taste

    # -- running -------------------------------------------------------------------------------

    async def catch_up(self) -> int:
        """Step until nothing is left to read as of the last read."""
        total = 0
        while True:
            total += await self.step()
            if not self.advanced:
                return total

    async def caught_up(self) -> bool:
        """True when it has reacted to everything the items stream held at the time of the call."""
        positions = await self.store.positions(NAME)
        for partition, end in (await self.log.end_offsets(ITEMS)).items():
            if positions.get(f"{ITEMS}/{partition}", 0) < end:
                return False
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the items stream until `stop` is set; survive transient errors with a pause."""
        while not stop.is_set():
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: step failed; retrying", NAME)
                self.advanced = False
                await asyncio.sleep(1.0)
            if not self.advanced:
                await self.log.wait_for_events((ITEMS,), self.idle_wait)
