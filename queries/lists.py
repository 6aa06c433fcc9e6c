"""What a user's lists do to their recommendations (MOVIEAUGUR_LIST_EFFECTS).

- `exclude`: the list's items are left out, like items the user has seen (also from the
  popularity fallback);
- `boost`: the list's items that the ranking holds (the model's list, or the fallback's) move to
  the front, in the ranking's own order, ahead of everything else, which keeps its order. A listed
  item the ranking does not hold is not added, and a seen or excluded one stays out. Their scores
  are the ranking's, so a boosted answer is not sorted by score;
- `none`: nothing.
An item on an exclude list and on a boost list is excluded.
"""

from __future__ import annotations

from dataclasses import dataclass

from kernel.settings import Settings
from projections import lists as lists_view
from projections.changes import ViewStore

Row = tuple[str, str, float]  # (item_type, item_id, score)


@dataclass(frozen=True)
class ListEffects:
    excluded: frozenset[str] = frozenset()  # "type:id"
    boosted: frozenset[str] = frozenset()

    def boost(self, rows: list[Row]) -> list[Row]:
        """`rows` with the boosted ones first; each part keeps its order."""
        if not self.boosted:
            return rows
        ahead = [row for row in rows if f"{row[0]}:{row[1]}" in self.boosted]
        if not ahead:
            return rows
        return ahead + [row for row in rows if f"{row[0]}:{row[1]}" not in self.boosted]


NO_EFFECTS = ListEffects()


async def list_effects(store: ViewStore, settings: Settings, user_id: str) -> ListEffects:
    """Reads only the lists that have an effect (one point read each, for lists up to 1000 items)."""
    excluded: set[str] = set()
    boosted: set[str] = set()
    for name in settings.lists:
        effect = settings.list_effect(name)
        if effect == "none":
            continue
        members = await lists_view.read_members(store, name, user_id)
        (excluded if effect == "exclude" else boosted).update(members)
    if not excluded and not boosted:
        return NO_EFFECTS
    return ListEffects(frozenset(excluded), frozenset(boosted - excluded))
