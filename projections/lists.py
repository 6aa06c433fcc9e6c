"""Users' named lists (a watchlist, ...): one sorted set per (list, user), its members the items.

A member's score is its place: minus the microsecond at which it got that place, so the store's
descending order (`top`) is the list's order, first first. The events carry everything the view
needs, so each change is a pure function of one event:
- `ListItemAdded`: `ScoreMax(-t)` with t the add's time. The end of the list is "later than
  anything before", and keeping the maximum of minus the time keeps the *first* add's place: adding
  an item that is already listed does not move it; after a removal it goes to the end again.
- `ListItemRemoved`: `ScoreRemove` of the member.
- `ListReordered`: `ScoreRemove` of the whole set, then the n given items at the n microseconds
  just before the reorder's time, in order; anything added afterwards comes after them.
Every change is idempotent and depends on the event alone, so a replay (or a batch applied twice)
builds the same list in every store. Scores are whole microseconds (about 1.7e15), which a double
holds exactly.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import ClassVar

from domain.events import LISTS, ListItemAdded, ListItemRemoved, ListReordered, MovieAugurEvent
from projections.base import NO_EFFECT, Projection
from projections.changes import Change, Effect, ScoreMax, ScoreRemove, ViewStore

SPACE = "lists"
#: How many members one read of a list asks for (a list is read whole, page by page).
_PAGE = 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def list_key(list_name: str, user_id: str) -> str:
    """List names are configured names without ':' (kernel/settings.py), so this is unambiguous."""
    return f"{list_name}:{user_id}"


def member_of(item_type: str, item_id: str) -> str:
    return f"{item_type}:{item_id}"


def micros(moment: datetime) -> int:
    """Whole microseconds since the epoch, exactly (no float rounding)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1)


def placed_at(score: float) -> float:
    """The Unix time (seconds) at which a member got its place, from its score."""
    return -score / 1_000_000


class ListsProjection(Projection):
    name: ClassVar[str] = "lists"
    streams: ClassVar[tuple[str, ...]] = (LISTS,)
    spaces: ClassVar[tuple[str, ...]] = (SPACE,)

    def effect(self, event: MovieAugurEvent) -> Effect:
        if isinstance(event, ListItemAdded):
            key = list_key(event.list_name, event.user_id)
            return Effect(changes=(ScoreMax(SPACE, key, event.item_key, -float(micros(event.timestamp))),))
        if isinstance(event, ListItemRemoved):
            return Effect(changes=(ScoreRemove(SPACE, list_key(event.list_name, event.user_id), event.item_key),))
        if isinstance(event, ListReordered):
            key = list_key(event.list_name, event.user_id)
            start = micros(event.timestamp) - len(event.items)
            changes: list[Change] = [ScoreRemove(SPACE, key)]
            for place, item in enumerate(event.items):
                member = member_of(item["item_type"], item["item_id"])
                changes.append(ScoreMax(SPACE, key, member, -float(start + place)))
            return Effect(changes=tuple(changes))
        return NO_EFFECT


# -- reading the view -------------------------------------------------------------------------------


async def read_list(store: ViewStore, list_name: str, user_id: str, offset: int, limit: int) -> list[tuple[str, float]]:
    """("type:id", score) in the list's order (see placed_at for the score)."""
    return await store.top(SPACE, {list_key(list_name, user_id): 1.0}, offset, limit)


async def read_members(store: ViewStore, list_name: str, user_id: str, at_most: int = 100_000) -> list[str]:
    """The whole list ("type:id" members, in order), read a page at a time, up to `at_most`."""
    members: list[str] = []
    while len(members) < at_most:
        page = await read_list(store, list_name, user_id, len(members), min(_PAGE, at_most - len(members)))
        members.extend(member for member, _ in page)
        if len(page) < _PAGE:
            break
    return members
