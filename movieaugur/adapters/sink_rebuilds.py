"""Which Connect-kept views are being copied again, as a marker in Redis beside the projector-kept
views' tracking.

Why a marker: a sink's collection that vanished (dropped by hand, a restore without it, a lost
volume) is refilled by resetting the sink, which copies its topic again from the start; until that
copy has reached what the topic held at the reset, the collection is a partial view. Readers ask
the marker (one HGET, like the `~ready` check of projector-kept views) and answer 503 "rebuilding"
instead of partial data. The marker holds the topic's end offsets at the reset ("partition" ->
offset), the point the sink's committed offsets must reach before it is cleared. HSETNX makes it a
lock too: of several projector workers watching, one resets the sink.
"""

from __future__ import annotations

from typing import cast

import orjson

from movieaugur.adapters.redis_views import RedisViewStore

KEY = "sinks:rebuilding"


async def rebuilding(store: RedisViewStore, projection: str) -> dict[str, int] | None:
    """The offsets the sink must reach, while `projection`'s sink copies its topic again."""
    raw = await store.redis.hget(f"{store.prefix}{KEY}", projection)
    return cast(dict[str, int], orjson.loads(raw)) if raw else None


async def begin(store: RedisViewStore, projection: str, targets: dict[str, int]) -> bool:
    """Mark the view as being copied again; False when another worker already did."""
    return bool(await store.redis.hsetnx(f"{store.prefix}{KEY}", projection, orjson.dumps(targets)))


async def finish(store: RedisViewStore, projection: str) -> None:
    await store.redis.hdel(f"{store.prefix}{KEY}", projection)
