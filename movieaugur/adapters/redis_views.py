"""Views in Redis: sorted sets natively, documents in hashes, tracking and guards beside them.

A batch is applied by one Lua script, which Redis runs atomically: it first checks that every
tracking position advances, and that a batch read from a known offset starts where the view ends
(else nothing is written: StaleTracking; after a replay's swap a projector that kept following is
ahead of the view, and applying past the end would skip events for good), then applies each effect whose
guard (event id) is new, then records the positions. So a projector killed at any point either
applied a whole batch with its positions or nothing, exactly as the SQLite store does.

Key layout under a prefix (default "ma:"):
  z:{space}:{key}      sorted set          d:{space}          hash key -> JSON document
  zk:{space}           set of zset keys    t:{projection}     hash source -> next offset
  g:{projection}:{source}   sorted set of applied event ids scored by their offset (bounded)
  t:{projection} field ~ready   set once the projector caught up with the log; absent while the view
                       is (re)built, so a flushed Redis reads as "rebuilding", never as an empty view
  revisions            hash: a counter per space, moved by every apply, drop and promote that
                       touches the space (ViewStore.revision(spaces): the read side keeps an answer
                       until a space it read moves), and `~epoch`, set at Redis's clock in
                       microseconds when the hash is created. After a flush the epoch starts above
                       any value it had before, so a kept answer is never matched by a counter of
                       a different life of the view; while it is missing, nothing is kept. Per
                       space, not one counter for all: commits of other views (the projector busy
                       after 10k titles arrived) kept every recommendation list from being kept
                       (BENCHMARKS.md §17).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from movieaugur.adapters.redis_in_order import InOrderConnection
from projections.changes import Batch, Change, DocPut, ScoreAdd, ScoreMax, ScoreRemove, StaleTracking, ViewStore

_BUMP_FUNCTION = """
local function bump(prefix, spaces)
  local key = prefix .. 'revisions'
  if redis.call('HEXISTS', key, '~epoch') == 0 then
    local now = redis.call('TIME')
    redis.call('HSET', key, '~epoch', string.format('%d', tonumber(now[1]) * 1000000 + tonumber(now[2])))
  end
  -- The one counter of earlier versions (a mixed deploy): deleted, so a query process still
  -- reading it keeps nothing rather than trust a counter that stopped; where a projector of an
  -- earlier version had moved it, `~earlier` moves, so a reader that saw it never sees it again.
  if redis.call('DEL', prefix .. 'revision') == 1 then
    redis.call('HINCRBY', key, '~earlier', 1)
  end
  for space, _ in pairs(spaces) do
    redis.call('HINCRBY', key, space, 1)
  end
end
local function spaces_from(first)
  local spaces = {}
  for i = first, #ARGV do spaces[ARGV[i]] = true end
  return spaces
end
"""

_BUMP = _BUMP_FUNCTION + """
bump(ARGV[1], spaces_from(2))
return 1
"""

_APPLY = _BUMP_FUNCTION + """
local prefix = ARGV[1]
local projection = ARGV[2]
local batch = cjson.decode(ARGV[3])
local tracking = prefix .. 't:' .. projection
for source, next_offset in pairs(batch.positions) do
  local current = tonumber(redis.call('HGET', tracking, source) or '-1')
  local start = batch.starts[source]
  if current >= next_offset then
    return redis.error_reply('STALE ' .. source .. ' at ' .. current)
  end
  -- Read from past the start but no tracking here: the view was lost (a flush, a restart without
  -- persistence). Applying would record a position over a view missing everything before it.
  if current < 0 and (start or 0) > 0 then
    return redis.error_reply('STALE ' .. source .. ' lost (no tracking): rebuilding from the start')
  end
  -- A batch that says where it was read from applies only where the view ends: after a replay's
  -- swap the view ends behind a projector that kept following, and a batch past the end would
  -- leave the events in between out for good; one that overlaps the end is read again instead
  -- (and a batch sent before the one ahead of it was applied is refused if that one was not).
  if start and start ~= math.max(current, 0) then
    return redis.error_reply('STALE ' .. source .. ' at ' .. current .. ', batch read from ' .. start)
  end
end
local guards = prefix .. 'g:' .. projection .. ':' .. batch.source
local horizon = batch.horizon
-- The effects arrive flat (columns, not a table per effect and change: cjson spent 4.3 us per
-- popularity event building those tables, 2.0 flat): per effect its guard (false for none), its
-- offset and its number of changes; the changes as one list, five values each (op, space, key,
-- member, value; false where an op has no member or value).
local guard_of, offset_of, changes_of, flat = batch.g, batch.o, batch.n, batch.c
-- Guards, for the whole batch at once: one ZMSCORE and one ZADD per CHUNK ids rather than a call
-- per event (Redis spent ~14 us per popularity event in this script; BENCHMARKS.md §7). `last`
-- is each id's counted offset as the log's order so far leaves it: Redis's, then this batch's.
local CHUNK = 1000
local ids = {}
for _, id in ipairs(guard_of) do
  if id then ids[#ids + 1] = id end
end
local guarded = #ids > 0
local last = {}
for first = 1, #ids, CHUNK do
  local upto = math.min(first + CHUNK - 1, #ids)
  local scores = redis.call('ZMSCORE', guards, unpack(ids, first, upto))
  for i = first, upto do
    if scores[i - first + 1] then last[ids[i]] = tonumber(scores[i - first + 1]) end
  end
end
local counted = {}  -- id -> the offset it is recorded at after this batch (a new id, or one past the horizon)
local indexed = {}  -- sorted sets already in the key index during this batch
local touched = {}  -- the spaces this batch changes: their revisions move
-- Adds and maxima are gathered per sorted set and member and written once per batch: a maximum
-- is what applying them one by one leaves, and a sum too up to the last bit of a weight that is
-- not a binary fraction (s + (a + b) against s + a + b). That was already so between a replay and
-- the live view: partitions interleave differently, so their sums are added in another order.
-- Anything else (a removal, a document) first writes what was gathered, so order between
-- operations on one member is kept.
local gathered, gathered_op = {}, {}
local function flush()
  for key, members in pairs(gathered) do
    local op = gathered_op[key]
    for member, value in pairs(members) do
      if op == 'add' then
        redis.call('ZINCRBY', key, value, member)
      else
        redis.call('ZADD', key, 'GT', value, member)
      end
    end
  end
  gathered, gathered_op = {}, {}
end
local at = 0  -- the last change read from `flat`, in values
for e, id in ipairs(guard_of) do
  local fresh = true
  if id then
    local offset = offset_of[e]
    local seen = last[id]
    if seen and offset - seen <= horizon then
      fresh = false
    else
      last[id] = offset
      counted[id] = offset
    end
  end
  local first = at
  at = at + 5 * changes_of[e]
  if fresh then
    for i = first + 1, at, 5 do
      local op, space, key_, member, value = flat[i], flat[i + 1], flat[i + 2], flat[i + 3], flat[i + 4]
      touched[space] = true
      if op == 'add' or op == 'max' then
        local key = prefix .. 'z:' .. space .. ':' .. key_
        if not indexed[key] then
          redis.call('SADD', prefix .. 'zk:' .. space, key_)
          indexed[key] = true
        end
        if gathered_op[key] and gathered_op[key] ~= op then flush() end
        local members = gathered[key]
        if not members then
          members = {}
          gathered[key] = members
          gathered_op[key] = op
        end
        local before = members[member]
        if before == nil then
          members[member] = value
        elseif op == 'add' then
          members[member] = before + value
        elseif value > before then
          members[member] = value
        end
      else
        flush()
        if op == 'rem' or op == 'clr' then
          -- Redis deletes a sorted set that loses its last member; the key index follows it.
          local key = prefix .. 'z:' .. space .. ':' .. key_
          if op == 'rem' then
            redis.call('ZREM', key, member)
          else
            redis.call('DEL', key)
          end
          if redis.call('EXISTS', key) == 0 then
            redis.call('SREM', prefix .. 'zk:' .. space, key_)
            indexed[key] = nil
          end
        else
          redis.call('HSET', prefix .. 'd:' .. space, key_, value)
        end
      end
    end
  end
end
flush()
local pairs_ = {}
for id, offset in pairs(counted) do
  pairs_[#pairs_ + 1] = offset
  pairs_[#pairs_ + 1] = id
  if #pairs_ >= 2 * CHUNK then
    redis.call('ZADD', guards, unpack(pairs_))
    pairs_ = {}
  end
end
if #pairs_ > 0 then redis.call('ZADD', guards, unpack(pairs_)) end
if guarded then
  redis.call('ZREMRANGEBYSCORE', guards, '-inf', '(' .. batch.cutoff)
end
for source, next_offset in pairs(batch.positions) do
  redis.call('HSET', tracking, source, next_offset)
end
bump(prefix, touched)
return #guard_of
"""


# Mark the view complete (field `~ready` of its tracking) only if the tracking still holds exactly
# the positions the runner caught up to: after a loss it is gone or restarted from 0.
_READY = """
local tracking = KEYS[1]
local positions = cjson.decode(ARGV[1])
local any = false
for source, offset in pairs(positions) do
  any = true
  if tonumber(redis.call('HGET', tracking, source) or '-1') ~= offset then
    return 0
  end
end
if any and redis.call('EXISTS', tracking) == 0 then
  return 0
end
redis.call('HSET', tracking, '~ready', 1)
return 1
"""

_PROMOTE = _BUMP_FUNCTION + """
local live, shadow, projection = ARGV[1], ARGV[2], ARGV[3]
-- Keys are found through the view's own indexes (the key index per space, the tracking's sources
-- for guards), never by SCAN: a SCAN inside a script walks the whole keyspace while Redis serves
-- nobody (20 million event-id keys beside the views: over 8 s, and the replay's client timed out).
local function guard_keys(prefix)
  local keys = {}
  for _, source in ipairs(redis.call('HKEYS', prefix .. 't:' .. projection)) do
    if string.sub(source, 1, 1) ~= '~' then
      keys[#keys + 1] = prefix .. 'g:' .. projection .. ':' .. source
    end
  end
  return keys
end
local function move(suffix)
  redis.call('DEL', live .. suffix)
  if redis.call('EXISTS', shadow .. suffix) == 1 then
    redis.call('RENAME', shadow .. suffix, live .. suffix)
  end
end
for i = 4, #ARGV do
  local space = ARGV[i]
  local zset = 'z:' .. space .. ':'
  for _, key in ipairs(redis.call('SMEMBERS', live .. 'zk:' .. space)) do
    redis.call('DEL', live .. zset .. key)
  end
  for _, key in ipairs(redis.call('SMEMBERS', shadow .. 'zk:' .. space)) do
    if redis.call('EXISTS', shadow .. zset .. key) == 1 then
      redis.call('RENAME', shadow .. zset .. key, live .. zset .. key)
    end
  end
  move('d:' .. space)
  move('zk:' .. space)
end
for _, key in ipairs(guard_keys(live)) do redis.call('DEL', key) end
for _, key in ipairs(guard_keys(shadow)) do
  if redis.call('EXISTS', key) == 1 then
    redis.call('RENAME', key, live .. string.sub(key, #shadow + 1))
  end
end
move('t:' .. projection)
redis.call('DEL', shadow .. 'revisions')  -- the shadow's own counters: its commits were nobody's reads
bump(live, spaces_from(4))
return 1
"""


#: How stale the query side's idea of the revision may be (seconds); see RedisViewStore.revision.
REVISION_RECHECK_SECONDS = 0.02


def _retrieved(read: asyncio.Future[None]) -> None:
    if not read.cancelled():
        read.exception()


def _encode_change(change: Change) -> tuple[Any, ...]:
    """A change as the apply script's five values (op, space, key, member, value)."""
    if type(change) is ScoreAdd:
        return ("add", change.space, change.key, change.member, change.delta)
    if type(change) is ScoreMax:
        return ("max", change.space, change.key, change.member, change.score)
    if type(change) is ScoreRemove:
        if change.member is None:
            return ("clr", change.space, change.key, False, False)
        return ("rem", change.space, change.key, change.member, False)
    assert type(change) is DocPut, change
    return ("doc", change.space, change.key, False, orjson.dumps(change.doc).decode())


def _apply_payload(batch: Batch) -> bytes:
    """The apply script's argument: the batch's tracking, and its effects flat (see _APPLY)."""
    guards: list[str | bool] = []
    offsets: list[int] = []
    counts: list[int] = []
    flat: list[Any] = []
    add_guard, add_offset, add_count, add_change = guards.append, offsets.append, counts.append, flat.extend
    for effect in batch.effects:
        add_guard(effect.guard or False)
        add_offset(effect.at)
        add_count(len(effect.changes))
        for change in effect.changes:
            add_change(_encode_change(change))
    return orjson.dumps({
        "positions": batch.next_offsets,
        "source": batch.source,
        "horizon": batch.horizon,
        "starts": batch.start_offsets,
        "cutoff": batch.guard_cutoff(),
        "g": guards, "o": offsets, "n": counts, "c": flat,
    })


class RedisViewStore(ViewStore):
    def applies_concurrently(self, projection: str) -> bool:
        """Each batch is one atomic script; batches of different partitions touch different
        tracking fields, so they may be in flight together."""
        return True

    def applies_in_order(self, projection: str) -> bool:
        """Batches go out on one connection in the order handed over (redis_in_order.py), and
        the apply script refuses one that does not start where the view ends."""
        return True

    def __init__(self, url: str, prefix: str = "ma:", client: Any = None, revision_recheck: float = REVISION_RECHECK_SECONDS,
                 in_order: InOrderConnection | None = None):
        """`client` and `in_order` share another store's connections (a shadow); that store closes
        them. `revision_recheck`: see revision()."""
        # Typed as Any: redis-py types every reply as `bytes | str` whatever decode_responses says;
        # with decode_responses=False (ours) they are bytes.
        self.redis: Any = client if client is not None else aioredis.from_url(url, decode_responses=False)
        self.url = url
        self.prefix = prefix
        self._in_order = in_order or InOrderConnection(self.redis)
        self._promote = self.redis.register_script(_PROMOTE)
        self._ready = self.redis.register_script(_READY)
        self._bump = self.redis.register_script(_BUMP)
        self._owns_connection = client is None
        self.revision_recheck = revision_recheck
        self._revision: tuple[str, int, dict[str, int]] | None = None
        self._revision_read_at = -float("inf")
        self._revision_read: asyncio.Future[None] | None = None

    def _z(self, space: str, key: str) -> str:
        return f"{self.prefix}z:{space}:{key}"

    # -- projector side ------------------------------------------------------------------------

    async def apply(self, projection: str, batch: Batch) -> None:
        payload = _apply_payload(batch)
        try:
            # EVAL with the script itself, not EVALSHA: Redis keeps it compiled by its digest, and a
            # batch sent behind one refused for an unknown script would be refused too.
            await self._in_order.call("EVAL", _APPLY, 0, self.prefix, projection, payload)
        except ResponseError as error:
            if str(error).startswith("STALE"):
                raise StaleTracking(f"{projection}: {error}") from error
            raise

    async def positions(self, projection: str) -> dict[str, int]:
        raw = await self.redis.hgetall(f"{self.prefix}t:{projection}")
        return {k.decode(): int(float(v)) for k, v in raw.items() if not k.startswith(b"~")}

    async def mark_ready(self, projection: str, positions: Mapping[str, int]) -> bool:
        return bool(await self._ready(keys=[f"{self.prefix}t:{projection}"], args=[orjson.dumps(dict(positions))]))

    async def ready(self, projection: str) -> bool:
        """Asked before every read of the view (one HEXISTS, ~0.1 ms): not cached, so no read after
        a loss answers from the emptied view."""
        return bool(await self.redis.hexists(f"{self.prefix}t:{projection}", "~ready"))

    async def drop(self, projection: str, spaces: Sequence[str]) -> None:
        # the revision moves before the first key goes (answers kept from the full view end) and
        # again after the last (also when the drop failed half-way)
        await self._bump(args=[self.prefix, *spaces])
        try:
            await self._drop(projection, spaces)
        finally:
            await self._bump(args=[self.prefix, *spaces])

    async def _drop(self, projection: str, spaces: Sequence[str]) -> None:
        doomed = [f"{self.prefix}t:{projection}"]
        async for key in self.redis.scan_iter(match=f"{self.prefix}g:{projection}:*", count=1000):
            doomed.append(key)
        for space in spaces:
            doomed.append(f"{self.prefix}d:{space}")
            doomed.append(f"{self.prefix}zk:{space}")
            async for key in self.redis.scan_iter(match=f"{self.prefix}z:{space}:*", count=1000):
                doomed.append(key)
        for start in range(0, len(doomed), 500):
            await self.redis.delete(*doomed[start : start + 500])

    # -- replay into a fresh view, then swap ----------------------------------------------------

    def _shadow_prefix(self, projection: str) -> str:
        return f"{self.prefix}shadow:{projection}:"

    def shadow(self, projection: str) -> RedisViewStore:
        """A store over the same server whose keys are a private copy for rebuilding `projection`."""
        return RedisViewStore(self.url, self._shadow_prefix(projection), client=self.redis, in_order=self._in_order)

    async def promote(self, projection: str, spaces: Sequence[str], shadow: ViewStore) -> None:
        """Atomically replace the live view (and its tracking and guards) by the rebuilt one (the
        shadow this store made for `projection`; its keys are found through its key index).

        Readers see the old view until this script runs and the new one after it. A projector that
        was following the log meanwhile continues from the rebuilt view's positions; a batch it had
        already computed is either refused as stale or, if it overlaps, absorbed by the guards."""
        await self._promote(args=[self.prefix, self._shadow_prefix(projection), projection, *spaces])

    # -- query side ----------------------------------------------------------------------------

    async def revision(self, spaces: Sequence[str]) -> tuple[str, int, tuple[int, ...]] | None:
        """(the server's run id, the epoch, each space's counter); None while no apply has set the
        epoch (a new or flushed Redis): then nothing is kept. The run id changes with every restart and
        failover, where a counter restored from a snapshot or a replica could repeat values it had
        before. Read at most every `revision_recheck` seconds, one read at a time, shared by the
        requests meanwhile: a read per request cost a third of a kept answer's time, and a commit
        is then seen at most that much later, on top of the projectors' own lag (hundreds of
        milliseconds)."""
        asked_at = time.monotonic()
        if asked_at - self._revision_read_at >= self.revision_recheck:
            read = self._revision_read
            if read is None or read.done():
                read = self._revision_read = asyncio.ensure_future(self._read_revision(asked_at))
                read.add_done_callback(_retrieved)  # a failure nobody waited for is not logged as lost
            await asyncio.shield(read)
        if self._revision is None:
            return None
        run_id, epoch, counters = self._revision
        earlier = (counters.get("~earlier", 0), counters["~old"])
        return run_id, epoch, (*earlier, *(counters.get(space, 0) for space in spaces))

    async def _read_revision(self, asked_at: float) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(f"{self.prefix}revisions")
            pipe.get(f"{self.prefix}revision")
            pipe.info("server")
            fields, earlier, server = await pipe.execute()
        counters = {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in fields.items()}
        # The one counter projectors of earlier versions move (see bump): during a mixed deploy
        # their commits give way to kept answers too.
        counters["~old"] = int(earlier) if earlier is not None else 0
        epoch = counters.pop("~epoch", None)
        self._revision = (str(server.get("run_id")), epoch, counters) if epoch is not None else None
        self._revision_read_at = asked_at

    async def top(self, space: str, keys: Mapping[str, float], offset: int, limit: int) -> list[tuple[str, float]]:
        if not keys:
            return []
        if len(keys) == 1 and next(iter(keys.values())) == 1.0:
            rows = await self.redis.zrevrange(self._z(space, next(iter(keys))), offset, offset + limit - 1, withscores=True)
            return [(member.decode(), score) for member, score in rows]
        rows = await self._weighted_union([self._z(space, k) for k in keys], list(keys.values()))
        rows.sort(key=lambda row: (row[1], row[0]), reverse=True)
        return rows[offset : offset + limit]

    async def _weighted_union(self, names: list[str], weights: list[float]) -> list[tuple[str, float]]:
        # ZUNION with WEIGHTS (Redis >= 6.2); redis-py's zunion takes a dict name -> weight.
        rows = await self.redis.zunion(dict(zip(names, weights, strict=True)), withscores=True)
        return [(member.decode(), score) for member, score in rows]

    async def score(self, space: str, key: str, member: str) -> float | None:
        return await self.redis.zscore(self._z(space, key), member)

    async def scores(self, space: str, key: str, members: Sequence[str]) -> list[float | None]:
        if not members:
            return []
        return await self.redis.zmscore(self._z(space, key), list(members))

    async def get_docs(self, space: str, keys: Sequence[str]) -> list[dict[str, Any] | None]:
        if not keys:
            return []
        raw = await self.redis.hmget(f"{self.prefix}d:{space}", list(keys))
        return [orjson.loads(value) if value is not None else None for value in raw]

    async def keys(self, space: str, prefix: str = "") -> list[str]:
        zkeys = {k.decode() for k in await self.redis.smembers(f"{self.prefix}zk:{space}")}
        dkeys = {k.decode() for k in await self.redis.hkeys(f"{self.prefix}d:{space}")}
        return sorted(k for k in zkeys | dkeys if k.startswith(prefix))

    async def dump(self, spaces: Sequence[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for space in spaces:
            zsets: dict[str, dict[str, float]] = {}
            for key in await self.redis.smembers(f"{self.prefix}zk:{space}"):
                rows = await self.redis.zrange(self._z(space, key.decode()), 0, -1, withscores=True)
                if rows:
                    zsets[key.decode()] = {m.decode(): s for m, s in rows}
            docs = await self.redis.hgetall(f"{self.prefix}d:{space}")
            out[space] = {"zsets": zsets, "docs": {k.decode(): orjson.loads(v) for k, v in docs.items()}}
        return out

    async def close(self) -> None:
        if self._owns_connection:
            await self._in_order.close()
            await self.redis.aclose()
