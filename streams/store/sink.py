"""The Redis sink: one atomic, offset-guarded apply per partition batch.

The Lua script compares the shard's stored offset with the one the caller last
saw (compare-and-set). On a match it runs every operation of the batch —
counter increments, HyperLogLog inserts, ranking updates, state changes,
expiries — and stores the batch's last offset and watermark, all at once; on a
mismatch it changes nothing and returns the stored offset, so the caller can
reload, drop what was already applied and try again. A batch redelivered by
Kafka therefore changes nothing, and a worker killed at any point loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

import msgspec

from streams.aggregators import BatchDelta, ShardMemory, field
from streams.common.keys import (
    BUYER_PAID_TALLY,
    OPS_CONSUMED,
    OPS_LATE,
    OPS_REJECTED_PREFIX,
    OPS_RETRACTIONS,
    OPS_TOO_LATE,
    REPEAT_FIELD,
    REPEAT_LIFETIME_TALLY,
    REPEAT_MAX,
    STATE_TABLES,
    VIEW_DEPTH_FIELD,
    VIEW_DEPTH_MAX,
    KeyLayout,
    Shard,
    closed_writes,
)
from streams.common.timebuckets import Bucket, BucketClock, Granularity
from streams.store.clients import AsyncClient, SyncClient

log = logging.getLogger(__name__)

RANKING_CAP = 1000
"""Members kept per ranking key (the top 20 of it is exported): hot products, brands, ..."""
PAGE_RANKING_CAP = 100_000
"""Members kept per key of the page views and page exits rankings: the exit-rate top 20
needs the exact views and exits of every page above the views floor, so every page of a
bucket is kept up to this many distinct pages per partition (13.6 MB per key at
100,000 paths of 40 characters: ``python -m loadtest.ranking_memory``). Beyond it the lowest
scores are dropped and their sum is kept in the bucket's counters
(:data:`~streams.common.keys.RANKING_TRIMMED`), the bound of any page's
undercount, exported as ``shop_ranking_undercount_bound``."""
CAPS = {"page_views": PAGE_RANKING_CAP, "page_exits": PAGE_RANKING_CAP}
CACHED_KEYS = 10_000  # HyperLogLog key names remembered between batches (per shard: ~2 MB)

# Operations: <code> <key index> <value count> <values...>; commands are fixed per code.
# Lists (HyperLogLog members, event ids, ranking and state pairs, counter increments)
# arrive packed in one value as a MessagePack array of strings, which Redis's Lua
# unpacks in C (cmsgpack); members go to Redis 1,000 at a time (Lua's unpack() is
# limited to a few thousand values).
APPLY_SCRIPT = """
local cur = redis.call('GET', KEYS[1])
if cur == false then cur = '' end
if cur ~= ARGV[1] then return {0, cur} end
local commands = {H='HINCRBY', X='EXPIREAT', E='EXPIRE', D='HDEL', A='ZADD', R='ZREM', W='UNLINK'}
local items = cmsgpack.unpack
local i = 5
local n = #ARGV
-- Q ops come first: event ids of the batch that this shard accepted before (duplicates).
-- If there are any, nothing is written and they are returned, so the caller can refuse
-- them and try again.
local dupes = {}
while i <= n and ARGV[i] == 'Q' do
  local ids = items(ARGV[i+3])
  for j = 1, #ids, 1000 do
    local found = redis.call('SMISMEMBER', KEYS[tonumber(ARGV[i+1])],
                             unpack(ids, j, math.min(j + 999, #ids)))
    for k = 1, #found do
      if found[k] == 1 then dupes[#dupes + 1] = ids[j + k - 1] end
    end
  end
  i = i + 3 + tonumber(ARGV[i+2])
end
if #dupes > 0 then return {2, cur, dupes} end
while i <= n do
  local op = ARGV[i]
  local key = KEYS[tonumber(ARGV[i+1])]
  local c = tonumber(ARGV[i+2])
  if op == 'P' or op == 'U' then
    -- members packed in one argument (far fewer arguments to send); P adds them to a
    -- HyperLogLog, U to a set, 1,000 at a time (unpack() is limited to a few thousand).
    -- Values after the members name more keys that get the same members (the other
    -- buckets of the same events: minute, hour, day, ...).
    local command = (op == 'P') and 'PFADD' or 'SADD'
    local members = items(ARGV[i+3])
    for k = 0, c - 1 do
      local target = key
      if k > 0 then target = KEYS[tonumber(ARGV[i+3+k])] end
      for j = 1, #members, 1000 do
        redis.call(command, target, unpack(members, j, math.min(j + 999, #members)))
      end
    end
  elseif op == 'Y' then
    -- ranking increments: increment, member, increment, member, ...; then the ranking's
    -- cap; further values name more rankings that get the same increments (other buckets).
    -- Many members: ZADD them once into the shard's scratch key (KEYS[4]) and sum it into
    -- each ranking with ZUNIONSTORE (a few C loops instead of one ZINCRBY call from Lua
    -- per member and ranking); few: ZINCRBY. Both add the increments to the scores.
    local pairs_ = items(ARGV[i+3])
    local cap = tonumber(ARGV[i+4])
    local merged = false
    for k = 0, c - 2 do
      local target = key
      if k > 0 then target = KEYS[tonumber(ARGV[i+4+k])] end
      if #pairs_ >= 64 and #pairs_ * 2 >= redis.call('ZCARD', target) then
        if not merged then
          redis.call('DEL', KEYS[4])
          for j = 1, #pairs_, 1000 do
            redis.call('ZADD', KEYS[4], unpack(pairs_, j, math.min(j + 999, #pairs_)))
          end
          merged = true
        end
        redis.call('ZUNIONSTORE', target, 2, target, KEYS[4])
      else
        for j = 1, #pairs_, 2 do redis.call('ZINCRBY', target, pairs_[j], pairs_[j + 1]) end
      end
      local over = redis.call('ZCARD', target) - cap
      if over > 0 then
        -- the scores dropped bound how low any member's score can be: summed per ranking
        local lost = 0
        local dropped = redis.call('ZRANGE', target, 0, over - 1, 'WITHSCORES')
        for j = 2, #dropped, 2 do lost = lost + tonumber(dropped[j]) end
        -- into the bucket's counters hash (it expires with the bucket): P:{S}:r:<g>:<t>:<name>
        -- -> P:{S}:b:<g>:<t>, field ranking_trimmed|ranking=<name> (streams/common/keys.py)
        local base, bucket, name = string.match(target, '^(.*):r:([^:]+:[^:]+):([^:]+)$')
        redis.call('HINCRBY', base .. ':b:' .. bucket, 'ranking_trimmed|ranking=' .. name, lost)
        redis.call('ZREMRANGEBYRANK', target, 0, over - 1)
      end
    end
    if merged then redis.call('DEL', KEYS[4]) end
  elseif op == 'S' then
    -- state entries: field, value, field, value, ...
    local pairs_ = items(ARGV[i+3])
    for j = 1, #pairs_, 1000 do
      redis.call('HSET', key, unpack(pairs_, j, math.min(j + 999, #pairs_)))
    end
  elseif op == 'M' then
    -- HINCRBY of many fields: field, increment, field, increment, ...
    local pairs_ = items(ARGV[i+3])
    for j = 1, #pairs_, 2 do redis.call('HINCRBY', key, pairs_[j], pairs_[j + 1]) end
  elseif op == 'B' then
    -- repeat purchase: count the buyer's paid orders in KEYS[key], move them up one bin
    local dist = KEYS[tonumber(ARGV[i+3])]
    local prefix = ARGV[i+4]
    local top = tonumber(ARGV[i+5])
    for j = i + 6, i + 2 + c do
      local orders = redis.call('HINCRBY', key, ARGV[j], 1)
      redis.call('HINCRBY', dist, prefix .. math.min(orders, top), 1)
      if orders > 1 then redis.call('HINCRBY', dist, prefix .. math.min(orders - 1, top), -1) end
    end
  elseif op == 'V' then
    -- page views per visitor in an hour or a day (the live 跳失率): add each visitor's
    -- views (visitor, n, visitor, n, ...) in KEYS[key] and move the visitors between the
    -- bins of the bucket's counters: ARGV[i+5] (exactly one view), ARGV[i+6] (two or more)
    local dist = KEYS[tonumber(ARGV[i+3])]
    local pairs_ = items(ARGV[i+4])
    local one, more = 0, 0
    for j = 1, #pairs_, 2 do
      local n = tonumber(pairs_[j + 1])
      local after = redis.call('HINCRBY', key, pairs_[j], n)
      if after == n then
        if n == 1 then one = one + 1 else more = more + 1 end
      elseif after - n == 1 then
        one = one - 1
        more = more + 1
      end
    end
    if one ~= 0 then redis.call('HINCRBY', dist, ARGV[i+5], one) end
    if more ~= 0 then redis.call('HINCRBY', dist, ARGV[i+6], more) end
  elseif op == 'C' then
    redis.call('HINCRBY', KEYS[3], ARGV[i+3], ARGV[i+4])
  else
    local command = commands[op]
    if command == nil then return redis.error_reply('unknown op ' .. tostring(op)) end
    redis.call(command, key, unpack(ARGV, i + 3, i + 2 + c))
  end
  i = i + 3 + c
end
if ARGV[3] ~= '' then redis.call('SET', KEYS[2], ARGV[3]) end
redis.call('HSET', KEYS[3], 'last_apply_ms', ARGV[4])
redis.call('SET', KEYS[1], ARGV[2])
return {1, ARGV[2]}
"""


def closed_granularities(
    buckets: Iterable[Bucket], clock: BucketClock, now_ms: int
) -> set[Granularity]:
    """The sizes of the buckets a batch writes that had ended by ``now_ms`` (wall clock).

    Such batches are counted per shard and size (``closed_writes:<g>`` in its ops): a
    reader that caches the figures of closed periods reads them again when a count moves.
    """
    now_s = now_ms // 1000
    return {b.granularity for b in buckets if clock.end_of(b) <= now_s}


class Applied(NamedTuple):
    """Outcome of one apply: written or not, the stored offset, the refused event ids."""

    applied: bool
    offset: int | None
    duplicates: frozenset[str] = frozenset()
    """Event ids of the batch accepted before (then nothing was written)."""


@dataclass(frozen=True, slots=True)
class StoredShard:
    """What Redis holds for a shard: last applied offset and the shard's memory."""

    applied_offset: int | None
    memory: ShardMemory


def _opt_int(value: bytes | str | None) -> int | None:
    if value is None or value in (b"", ""):
        return None
    return int(value)


class _Script:
    """Accumulates KEYS and ARGV of one apply."""

    def __init__(self, fixed_keys: list[str]) -> None:
        self.keys = list(fixed_keys)
        self.index = {key: i + 1 for i, key in enumerate(self.keys)}
        self.args: list[str | int | bytes] = []

    def key(self, key: str) -> int:
        if key not in self.index:
            self.keys.append(key)
            self.index[key] = len(self.keys)  # Lua is 1-based
        return self.index[key]

    def op(self, code: str, key: str, *values: str | int | bytes) -> None:
        self.args += [code, self.key(key), len(values), *values]


_PACKER = msgspec.msgpack.Encoder()


def pack_list(items: Iterable[str]) -> bytes:
    """Items as one MessagePack array of strings, in the given order (the script's unpack)."""
    return _PACKER.encode(items if isinstance(items, list | set) else list(items))


class RedisSink:
    """Writes batch deltas to Redis; the only writer of KPI keys.

    Loads go through the asyncio ``client``. Applies go through the blocking
    ``writer`` in a worker thread: an apply sends about a megabyte per 5,000
    events and waits while Redis runs the script, and a blocking socket does
    both without the event loop, so the next batch is decoded and aggregated
    meanwhile (with asyncio the rest of a large request waited for the loop,
    busy with that very work; ``docs/benchmarks.md``).
    """

    def __init__(
        self,
        client: AsyncClient,
        writer: SyncClient,
        layout: KeyLayout,
        clock: BucketClock,
        retention_s: dict[Granularity, int],
        dedupe_horizon_s: int = 600,
        kept_from_s: int = 0,
    ) -> None:
        self.client = client
        self.writer = writer
        self.dedupe_horizon_s = dedupe_horizon_s
        self.layout = layout
        self.clock = clock
        self.retention_s = retention_s
        self.kept_from_s = kept_from_s
        """History replays: buckets that ended before this epoch second are kept for their
        retention from it (as :class:`~streams.aggregators.AggregatorConfig`)."""
        self._script = writer.register_script(APPLY_SCRIPT)
        self._distinct_keys: dict[Shard, dict[tuple[Bucket, str], str]] = {}

    def expires_at(self, bucket: Bucket) -> int:
        """Absolute expiry of a bucket's keys (the same on replay as live)."""
        end = max(self.clock.end_of(bucket), self.kept_from_s)  # end_of: cached
        return end + self.retention_s[bucket.granularity]

    def _distinct_key_cache(self, shard: Shard) -> dict[tuple[Bucket, str], str]:
        """The shard's distinct-set keys built so far: the same ones recur batch after batch."""
        keys = self._distinct_keys.get(shard)
        if keys is None or len(keys) > CACHED_KEYS:
            keys = self._distinct_keys[shard] = {}
        return keys

    async def load(self, shard: Shard) -> StoredShard:
        """Read the shard's applied offset, watermark and state tables (one round trip).

        The shard is also added to the set of shards the exporter reads: every
        shard is loaded before its first apply, and the apply itself may touch
        only the shard's own Redis Cluster slot.
        """
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.sadd(self.layout.shards(), shard.id)
            pipe.get(self.layout.applied(shard))  # not MGET: a cluster pipeline refuses it
            pipe.get(self.layout.watermark(shard))
            for table in STATE_TABLES:
                pipe.hgetall(self.layout.state(shard, table))
            pipe.exists(*self.layout.obsolete(shard))
            _, applied, watermark, *tables, obsolete = await pipe.execute()
        decoded = {
            table: {_text(k): v for k, v in rows.items()}
            for table, rows in zip(STATE_TABLES, tables, strict=True)
        }
        if obsolete:
            await self._drop_obsolete(shard)
        return StoredShard(_opt_int(applied), ShardMemory.from_tables(_opt_int(watermark), decoded))

    async def _drop_obsolete(self, shard: Shard) -> None:
        """The upgrade from an earlier version: drop what it kept that this one cannot use.

        Its running sessions and conversation summaries cannot be turned back into the
        events this version keeps; its live sets lack the time each conversation ends
        (this version writes its own from the conversations it sees). Visits and
        conversations open at the upgrade are not continued (``docs/operations.md``).
        """
        keys = self.layout.obsolete(shard)
        dropped = await self.client.delete(*keys)
        log.warning(
            "shard %s: dropped %d keys an earlier version wrote (%s); visits and "
            "conversations open at the upgrade are not continued (docs/operations.md)",
            shard.id,
            dropped,
            ", ".join(keys),
        )

    async def apply(
        self, shard: Shard, expected: int | None, last_offset: int, delta: BatchDelta, now_ms: int
    ) -> Applied:
        """Apply ``delta`` unless the stored offset differs from ``expected``.

        Nothing is written either if one of the batch's event ids
        (``delta.seen_ids``) was accepted before on this shard; those ids are
        returned.
        """
        keys, args = self.build_script_call(shard, expected, last_offset, delta, now_ms)
        # EVALSHA (loading the script if needed), in a thread: see the class docstring
        reply = await asyncio.to_thread(self._script, keys, args)
        status, offset = int(reply[0]), _opt_int(reply[1])
        duplicates = frozenset(_text(v) for v in reply[2]) if status == 2 else frozenset()
        return Applied(status == 1, offset, duplicates)

    def build_script_call(
        self, shard: Shard, expected: int | None, last_offset: int, delta: BatchDelta, now_ms: int
    ) -> tuple[list[str], list[str | int | bytes]]:
        """KEYS and ARGV of the apply script for one batch."""
        layout = self.layout
        script = _Script(
            [
                layout.applied(shard),
                layout.watermark(shard),
                layout.ops(shard),
                layout.scratch(shard),
            ]
        )
        script.args += [
            "" if expected is None else str(expected),
            last_offset,
            "" if delta.watermark_ms is None else str(delta.watermark_ms),
            now_ms,
        ]
        expiries: dict[str, int] = {}
        seen = []
        for minute, ids in delta.seen_ids.items():
            key = layout.seen(shard, minute)
            seen.append((key, pack_list(ids)))
        for key, packed in seen:
            script.op("Q", key, packed)  # first: the script checks them before writing
        by_key: dict[str, list[tuple[str, int]]] = {}
        touched: set[Bucket] = set()
        for (bucket, name), n in delta.counters.items():
            key = layout.counters(shard, bucket)
            if key not in by_key:
                touched.add(bucket)
                by_key[key] = []
                expiries[key] = self.expires_at(bucket)
            by_key[key].append((name, n))
        for key, increments in by_key.items():
            script.op("M", key, pack_list(_flat((name, str(n)) for name, n in increments)))
        # A group's members go to every key that shares them (buckets x fields), sent once.
        shared: dict[int, tuple[set[str], list[str]]] = {}
        known = self._distinct_key_cache(shard)
        for buckets, name, members in delta.distinct_groups():
            targets = shared.setdefault(id(members), (members, []))[1]
            touched.update(buckets)
            for bucket in buckets:
                set_key = known.get((bucket, name))
                if set_key is None:
                    set_key = known[(bucket, name)] = layout.distinct(shard, bucket, name)
                if set_key not in expiries:
                    expiries[set_key] = self.expires_at(bucket)
                targets.append(set_key)
        for members, targets in shared.values():
            others = [script.key(key) for key in targets[1:]]
            script.op("P", targets[0], pack_list(members), *others)
        for buckets, name, scores in delta.ranked_groups():
            targets = [layout.ranking(shard, bucket, name) for bucket in buckets]
            touched.update(buckets)
            for key, bucket in zip(targets, buckets, strict=True):
                expiries[key] = self.expires_at(bucket)
                # the bucket's counters get the ranking's trimmed scores (the script's 'Y')
                expiries.setdefault(layout.counters(shard, bucket), expiries[key])
            packed = pack_list(_flat((str(n), m) for m, n in scores.items()))
            others = [script.key(key) for key in targets[1:]]
            script.op("Y", targets[0], packed, CAPS.get(name, RANKING_CAP), *others)
        lifetime_count = layout.tally(shard, BUYER_PAID_TALLY)
        lifetime_dist = layout.tally(shard, REPEAT_LIFETIME_TALLY)
        prefix = field(REPEAT_FIELD, "orders", "")
        for periods, buyer in delta.repeat_buyers:
            script.op("B", lifetime_count, script.key(lifetime_dist), prefix, REPEAT_MAX, buyer)
            touched.update(periods)
            for bucket in periods:
                count_key = layout.buyer_period(shard, bucket)
                dist_key = layout.counters(shard, bucket)
                script.op("B", count_key, script.key(dist_key), prefix, REPEAT_MAX, buyer)
                expiries[count_key] = self.expires_at(bucket)
                expiries[dist_key] = self.expires_at(bucket)
        one, more = field(VIEW_DEPTH_FIELD, "views", "1"), view_depth_bin(VIEW_DEPTH_MAX)
        for periods, views in delta.view_depth.items():
            packed = pack_list(_flat((visitor, str(n)) for visitor, n in views.items()))
            touched.update(periods)
            for bucket in periods:
                views_key, dist_key = (
                    layout.visitor_period(shard, bucket),
                    layout.counters(shard, bucket),
                )
                script.op("V", views_key, script.key(dist_key), packed, one, more)
                expiries[dist_key] = self.expires_at(bucket)
                # normally dropped by the watermark (W below); else gone an hour retention
                # after the period, not a day retention
                end = max(self.clock.end_of(bucket), self.kept_from_s)
                expiries[views_key] = end + self.retention_s[Granularity.HOUR]
        # after 'V' (a batch may write a bucket, then close it); UNLINK frees a day's hash of
        # every visitor in the background instead of blocking Redis while it is freed
        for bucket in delta.depth_closed:
            script.op("W", layout.visitor_period(shard, bucket))
        by_table: dict[str, list[str]] = {}
        for (table, key_), value in delta.state_put.items():
            by_table.setdefault(table, []).extend((key_, value))
        for table, pairs in by_table.items():
            script.op("S", layout.state(shard, table), pack_list(pairs))
        for table, key_ in delta.state_del:
            script.op("D", layout.state(shard, table), key_)
        for (name, member), score in delta.zset_put.items():
            script.op("A", layout.live_set(shard, name), score, member)
        for name, member in delta.zset_del:
            script.op("R", layout.live_set(shard, name), member)
        for (name, member), n in delta.tallies.items():
            if n:
                script.op("H", layout.tally(shard, name), member, n)
        for key, packed in seen:
            script.op("U", key, packed)
            # kept for the horizon after the batch (relative: a replay of old events too)
            script.op("E", key, 60 + self.dedupe_horizon_s)
        for key, expire_at in expiries.items():
            script.op("X", key, expire_at)
        script.op("C", layout.ops(shard), OPS_CONSUMED, delta.consumed)
        for granularity in closed_granularities(touched, self.clock, now_ms):
            script.op("C", layout.ops(shard), closed_writes(granularity), 1)
        if delta.late:
            script.op("C", layout.ops(shard), OPS_LATE, delta.late)
        if delta.too_late:
            script.op("C", layout.ops(shard), OPS_TOO_LATE, delta.too_late)
        if delta.retractions:
            script.op("C", layout.ops(shard), OPS_RETRACTIONS, delta.retractions)
        for reason, n in delta.rejected.items():
            script.op("C", layout.ops(shard), OPS_REJECTED_PREFIX + reason.value, n)
        return script.keys, script.args


def view_depth_bin(views: int) -> str:
    """The counter field of the visitors with ``views`` page views (the last bin: or more)."""
    return field(VIEW_DEPTH_FIELD, "views", str(min(views, VIEW_DEPTH_MAX)))


def _flat(pairs: Iterable[tuple[str, str]]) -> Iterable[str]:
    for first, second in pairs:
        yield first
        yield second


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
