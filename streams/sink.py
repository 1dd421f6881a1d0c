"""The Redis sink: one atomic, offset-guarded apply per partition batch.

The Lua script compares the shard's stored offset with the one the caller last
saw (compare-and-set). On a match it applies every increment, HyperLogLog insert
and expiry of the batch and stores the batch's last offset, all at once; on a
mismatch it changes nothing and returns the stored state, so the caller can drop
what was already applied and try again. A batch redelivered by Kafka therefore
changes nothing, and a worker killed at any point loses nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis.asyncio as aioredis

from streams.aggregators import BatchDelta, TrafficAggregator
from streams.keys import (
    OPS_CONSUMED,
    OPS_LATE,
    OPS_REJECTED_PREFIX,
    KeyLayout,
    Shard,
)

log = logging.getLogger(__name__)

PFADD_CHUNK = 1000  # Lua's unpack() is limited to a few thousand values

APPLY_SCRIPT = """
local cur = redis.call('GET', KEYS[1])
if cur == false then cur = '' end
if cur ~= ARGV[1] then
  local wm = redis.call('GET', KEYS[2])
  if wm == false then wm = '' end
  return {0, cur, wm}
end
local i = 5
local n = #ARGV
while i <= n do
  local op = ARGV[i]
  if op == 'H' then
    redis.call('HINCRBY', KEYS[tonumber(ARGV[i+1])], ARGV[i+2], ARGV[i+3])
    i = i + 4
  elseif op == 'P' then
    local c = tonumber(ARGV[i+2])
    redis.call('PFADD', KEYS[tonumber(ARGV[i+1])], unpack(ARGV, i+3, i+2+c))
    i = i + 3 + c
  elseif op == 'X' then
    redis.call('EXPIREAT', KEYS[tonumber(ARGV[i+1])], ARGV[i+2])
    i = i + 3
  elseif op == 'C' then
    redis.call('HINCRBY', KEYS[3], ARGV[i+1], ARGV[i+2])
    i = i + 3
  else
    return redis.error_reply('unknown op ' .. tostring(op))
  end
end
if ARGV[3] ~= '' then redis.call('SET', KEYS[2], ARGV[3]) end
redis.call('HSET', KEYS[3], 'last_apply_ms', ARGV[4])
redis.call('SET', KEYS[1], ARGV[2])
return {1, ARGV[2], ARGV[3]}
"""


@dataclass(frozen=True, slots=True)
class ShardState:
    """What Redis holds for a shard: last applied offset and watermark."""

    applied_offset: int | None
    watermark_ms: int | None


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """Whether the apply happened, and the shard's state afterwards."""

    applied: bool
    state: ShardState


def _opt_int(value: bytes | str | None) -> int | None:
    if value is None or value in (b"", ""):
        return None
    return int(value)


class RedisSink:
    """Writes batch deltas to Redis; the only writer of KPI keys."""

    def __init__(
        self, client: aioredis.Redis, layout: KeyLayout, aggregator: TrafficAggregator
    ) -> None:
        self.client = client
        self.layout = layout
        self.aggregator = aggregator
        self._script = client.register_script(APPLY_SCRIPT)

    async def load_state(self, shard: Shard) -> ShardState:
        """Read the shard's applied offset and watermark (one round trip)."""
        applied, watermark = await self.client.mget(
            [self.layout.applied(shard), self.layout.watermark(shard)]
        )
        return ShardState(_opt_int(applied), _opt_int(watermark))

    async def apply(
        self,
        shard: Shard,
        expected: ShardState,
        last_offset: int,
        delta: BatchDelta,
        now_ms: int,
    ) -> ApplyResult:
        """Apply ``delta`` if the stored offset still equals ``expected.applied_offset``."""
        keys, args = self.build_script_call(shard, expected, last_offset, delta, now_ms)
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.sadd(self.layout.shards(), shard.id)
            await self._script(keys=keys, args=args, client=pipe)
            _, reply = await pipe.execute()
        ok, offset, watermark = reply
        return ApplyResult(bool(ok), ShardState(_opt_int(offset), _opt_int(watermark)))

    def build_script_call(
        self,
        shard: Shard,
        expected: ShardState,
        last_offset: int,
        delta: BatchDelta,
        now_ms: int,
    ) -> tuple[list[str], list[str | int]]:
        """KEYS and ARGV of the apply script for one batch."""
        layout = self.layout
        keys: list[str] = [layout.applied(shard), layout.watermark(shard), layout.ops(shard)]
        index: dict[str, int] = {}

        def key_index(key: str) -> int:
            if key not in index:
                keys.append(key)
                index[key] = len(keys)  # Lua is 1-based
            return index[key]

        expected_text = "" if expected.applied_offset is None else str(expected.applied_offset)
        watermark_text = "" if delta.watermark_ms is None else str(delta.watermark_ms)
        args: list[str | int] = [expected_text, last_offset, watermark_text, now_ms]
        expiries: dict[str, int] = {}
        for (bucket, channel), count in delta.pageviews.items():
            key = layout.pageviews(shard, bucket)
            args += ["H", key_index(key), channel, count]
            expiries[key] = self.aggregator.expires_at(bucket)
        for (bucket, channel), visitors in delta.visitors.items():
            key = layout.visitors(shard, bucket, channel)
            members = sorted(visitors)
            idx = key_index(key)
            for start in range(0, len(members), PFADD_CHUNK):
                chunk = members[start : start + PFADD_CHUNK]
                args += ["P", idx, len(chunk), *chunk]
            expiries[key] = self.aggregator.expires_at(bucket)
        for key, expire_at in expiries.items():
            args += ["X", index[key], expire_at]
        args += ["C", OPS_CONSUMED, delta.consumed]
        if delta.late:
            args += ["C", OPS_LATE, delta.late]
        for reason, count in delta.rejected.items():
            args += ["C", OPS_REJECTED_PREFIX + reason.value, count]
        return keys, args
