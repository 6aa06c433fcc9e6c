"""Which event ids the Kafka log has taken recently, and with what content (in Redis).

Kafka has no "insert unless present", so the Kafka log asks this index before appending: an id it
holds with the same fingerprint is a duplicate (not appended again), with another fingerprint a
conflict. An id is remembered for a horizon (MOVIEAUGUR_DEDUPE_HORIZON_SECONDS, default 7 days)
from its append; a retry later than that is appended again, and the views still count it once
within their own horizon (projections/changes.py). Ids are remembered after the transaction
commits, so a crash in between can at worst let one retry append a copy — never lose an event.
A batch whose commit went unanswered is remembered as uncertain, with its transaction's anchor, until
a retry learns the outcome (movieaugur/adapters/kafka_outcomes.py).
If Redis cannot be reached the log still takes writes (availability first) and says so in the log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


# One round trip for a whole batch: SET id fingerprint EX horizon, for every pair in ARGV.
_REMEMBER = """
local prefix, ttl = ARGV[1], tonumber(ARGV[2])
for i = 3, #ARGV, 2 do
  redis.call('SET', prefix .. ARGV[i], ARGV[i + 1], 'EX', ttl)
end
return (#ARGV - 2) / 2
"""


def uncertain(anchor: str, fingerprint: str) -> str:
    return f"?{anchor}|{fingerprint}"


def parse_uncertain(value: str) -> tuple[str, str] | None:
    """(anchor, fingerprint) of a value `uncertain` made; None for a plain fingerprint."""
    if not value.startswith("?"):
        return None
    anchor, _, fingerprint = value[1:].rpartition("|")
    return anchor, fingerprint


class RedisEventIds:
    def __init__(self, url: str, prefix: str, horizon_seconds: int):
        # Typed as Any: redis-py types replies as `bytes | str` whatever decode_responses says.
        self.redis: Any = aioredis.from_url(url, decode_responses=True, socket_timeout=2.0)
        self.prefix = prefix
        self.horizon = horizon_seconds
        self._remember = self.redis.register_script(_REMEMBER)

    def _key(self, event_id: str) -> str:
        return f"{self.prefix}eid:{event_id}"

    async def lookup(self, event_ids: Sequence[str]) -> dict[str, str]:
        """event_id -> fingerprint for the ids remembered; empty when Redis is unreachable."""
        found: dict[str, str] = {}
        try:
            for start in range(0, len(event_ids), 5000):
                chunk = list(event_ids[start : start + 5000])
                values = await self.redis.mget([self._key(i) for i in chunk])
                found.update((i, v) for i, v in zip(chunk, values, strict=True) if v is not None)
        except (RedisError, OSError) as error:
            log.warning("event-id index unreachable (%r): appending without the duplicate check", error)
            return {}
        return found

    async def remember(self, fingerprints: Mapping[str, str]) -> None:
        try:
            pairs = list(fingerprints.items())
            for start in range(0, len(pairs), 5000):
                args: list[str | int] = [f"{self.prefix}eid:", self.horizon]
                for event_id, fingerprint in pairs[start : start + 5000]:
                    args += (event_id, fingerprint)
                await self._remember(args=args)
        except (RedisError, OSError) as error:
            log.warning("event-id index unreachable (%r): %d ids not remembered", error, len(fingerprints))

    async def remember_uncertain(self, fingerprints: Mapping[str, str], anchor: str) -> None:
        """Remember ids whose transaction's commit went unanswered: `lookup` gives them back as
        `uncertain(anchor, fingerprint)` until `remember` overwrites them with the outcome."""
        await self.remember({event_id: uncertain(anchor, fingerprint) for event_id, fingerprint in fingerprints.items()})

    async def close(self) -> None:
        await self.redis.aclose()
