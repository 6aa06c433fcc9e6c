"""What each user has been notified of, newest first.

Two spaces, fed by `UserNotified` and idempotent (`ScoreMax` of the event's time, a document put
under the event's own id), so a notification delivered twice, or replayed, shows once:
- `notifications`: per user, the notification ids scored by their time;
- `notification_docs`: per notification id, what it says (kind, item, reason, time).
"""

from __future__ import annotations

from typing import Any, ClassVar

from domain.events import NOTIFICATIONS, MovieAugurEvent, UserNotified
from projections.base import NO_EFFECT, Projection
from projections.changes import DocPut, Effect, ScoreMax, ViewStore

SPACE = "notifications"
DOCS_SPACE = "notification_docs"


class NotificationsProjection(Projection):
    name: ClassVar[str] = "notifications"
    streams: ClassVar[tuple[str, ...]] = (NOTIFICATIONS,)
    spaces: ClassVar[tuple[str, ...]] = (SPACE, DOCS_SPACE)

    def effect(self, event: MovieAugurEvent) -> Effect:
        if not isinstance(event, UserNotified):
            return NO_EFFECT
        at = float(event.occurred_at)
        doc = {
            "id": event.event_id,
            "kind": event.kind,
            "item_type": event.item_type,
            "item_id": event.item_id,
            "reason": event.reason,
            "notified_at": event.occurred_at,
        }
        return Effect(
            changes=(
                ScoreMax(SPACE, event.user_id, event.event_id, at),
                DocPut(DOCS_SPACE, event.event_id, doc),
            )
        )


# -- reading the view -------------------------------------------------------------------------------


async def read_notifications(store: ViewStore, user_id: str, offset: int, limit: int) -> list[dict[str, Any]]:
    """The user's notifications, newest first (documents as NotificationsProjection writes them)."""
    rows = await store.top(SPACE, {user_id: 1.0}, offset, limit)
    docs = await store.get_docs(DOCS_SPACE, [notice_id for notice_id, _ in rows])
    return [doc for doc in docs if doc is not None]
