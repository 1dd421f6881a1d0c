"""The store's in-memory twin holds what the Lua apply writes to Redis, batch for batch."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Sequence

import pytest
import redis
import redis.asyncio as aioredis

from loadtest.shop_generator import disorder, generate_shop
from streams.common.keys import BUYER_PAID_TALLY, REPEAT_LIFETIME_TALLY, KeyLayout, Shard
from streams.common.settings import Settings, topic_kinds
from streams.common.timebuckets import Bucket, BucketClock, Granularity
from streams.ingest.events import TopicKind
from streams.store import sink as sink_module
from streams.store.memory_sink import MemorySink, ShardStore
from streams.worker.pipeline import BatchProcessor, DeadLetterList, Record
from streams.worker.runtime import aggregator, batch_processor, decode_limits
from tests.integration.clock import Clock
from tests.integration.conftest import Stack
from tests.integration.kpi_compare import MINUTE_MS

pytestmark = pytest.mark.integration


def batches_of(settings: Settings, now_ms: int) -> list[tuple[Shard, list[Record]]]:
    """Forty minutes of shop traffic on three topics, out of order, with invalid messages
    and copies sent twice, cut into random batches per shard."""
    traffic = generate_shop(
        seed=11, start_ms=now_ms - 50 * MINUTE_MS, duration_s=40 * 60, visitors=400, bad_ratio=0.02
    )
    rng = random.Random(11)
    topics = {"clickstream": settings.clickstream_topic, "orders": settings.orders_topic}
    topics["chat"] = settings.chat_topic
    out: list[tuple[Shard, list[Record]]] = []
    for kind, topic in topics.items():
        messages = [v for _, v in disorder(traffic.messages[kind], 11, 0.3, 10 * MINUTE_MS)]
        messages += rng.sample(messages, 20)  # resent copies: refused as duplicates
        offset = 0
        while offset < len(messages):
            size = rng.choice([1, 7, 50, 300])
            chunk = messages[offset : offset + size]
            out.append((Shard(topic, 0), [Record(offset + i, v) for i, v in enumerate(chunk)]))
            offset += size
    return out


async def feed(processor: BatchProcessor, batches: Sequence[tuple[Shard, list[Record]]]) -> None:
    for shard, records in batches:
        await processor.process(shard, records)


def int_hash(client: redis.Redis, key: str) -> dict[str, int]:
    return {str(k): int(v) for k, v in client.hgetall(key).items()}


def compare(client: redis.Redis, layout: KeyLayout, shard: Shard, twin: ShardStore) -> list[str]:
    """Every difference between Redis and the twin for ``shard``."""
    problems: list[str] = []

    def same(what: str, got: object, expected: object) -> None:
        if got != expected:
            problems.append(f"{what}: Redis {got!r}, twin {expected!r}")

    same("applied", int(client.get(layout.applied(shard)) or -1), twin.applied)
    same("watermark", int(client.get(layout.watermark(shard)) or -1), twin.watermark_ms)
    ops = int_hash(client, layout.ops(shard))
    ops.pop("last_apply_ms")
    same("ops", ops, {k: v for k, v in twin.ops.items() if k != "last_apply_ms"})
    buckets = {bucket for bucket, _ in twin.counters}
    for bucket in buckets:
        expected = {name: n for (b, name), n in twin.counters.items() if b == bucket}
        same(f"counters {bucket}", int_hash(client, layout.counters(shard, bucket)), expected)
    for (bucket, name), members in twin.distinct.items():
        count = int(client.pfcount(layout.distinct(shard, bucket, name)))
        if abs(count - len(members)) > max(3, 0.02 * len(members)):  # HyperLogLog error
            problems.append(f"distinct {bucket} {name}: Redis {count}, twin {len(members)}")
    for (bucket, name), scores in twin.ranked.items():
        stored = client.zrange(layout.ranking(shard, bucket, name), 0, -1, withscores=True)
        same(f"ranking {bucket} {name}", {str(m): int(s) for m, s in stored}, dict(scores))
    for period, orders in twin.buyer_orders.items():
        key = (
            layout.tally(shard, BUYER_PAID_TALLY)
            if period is None
            else layout.buyer_period(shard, period)
        )
        same(f"buyers {period}", int_hash(client, key), dict(orders))
    lifetime = int_hash(client, layout.tally(shard, REPEAT_LIFETIME_TALLY))
    same("lifetime repeat purchase", lifetime, dict(twin.lifetime))
    for table, rows in twin.tables.items():
        stored_rows = {
            str(k): str(v) for k, v in client.hgetall(layout.state(shard, table)).items()
        }
        same(f"state {table}", stored_rows, rows)
    for name, members in twin.zsets.items():
        stored = client.zrange(layout.live_set(shard, name), 0, -1, withscores=True)
        same(f"live set {name}", {str(m): int(s) for m, s in stored}, members)
    for name, tally in twin.tallies.items():
        same(f"tally {name}", int_hash(client, layout.tally(shard, name)), dict(tally))
    for bucket, views in twin.visitor_views.items():
        key = layout.visitor_period(shard, bucket)
        same(f"page views per visitor {bucket}", int_hash(client, key), dict(views))
    pattern = layout.counters(shard, Bucket(Granularity.HOUR, 0)).split("}:")[0] + "}:vp:*"
    stored_periods = {str(k) for k in client.scan_iter(match=pattern)}
    kept = {layout.visitor_period(shard, b) for b, views in twin.visitor_views.items() if views}
    same("periods with page views per visitor", stored_periods, kept)
    return problems


def test_the_twin_and_the_lua_apply_agree(
    stack: Stack, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small ranking caps, so that rankings lose members and both keep the lost scores.
    monkeypatch.setattr(sink_module, "RANKING_CAP", 5)
    monkeypatch.setitem(sink_module.CAPS, "page_views", 7)
    monkeypatch.setitem(sink_module.CAPS, "page_exits", 7)
    settings = Settings(
        redis_url=stack.redis_url,
        redis_prefix=f"twin{uuid.uuid4().hex[:6]}",
        allowed_lateness_seconds=15 * 60,
    )
    now_ms = clock.now_ms()
    batches = batches_of(settings, now_ms)
    kinds = {topic: TopicKind(kind) for topic, kind in topic_kinds(settings).items()}
    twin = MemorySink(clock=BucketClock(settings.business_timezone))
    twin.ranking_cap, twin.caps = 5, dict(sink_module.CAPS)

    async def run() -> None:
        client = aioredis.Redis.from_url(settings.redis_url)
        try:
            real = batch_processor(settings, client, DeadLetterList())
            real.clock_ms = lambda: now_ms
            await feed(real, batches)
        finally:
            await client.aclose()
        memory = BatchProcessor(
            decode_limits(settings), aggregator(settings), twin, DeadLetterList(), kinds
        )
        memory.clock_ms = lambda: now_ms
        await feed(memory, batches)

    asyncio.run(run())
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    layout = KeyLayout(settings.redis_prefix)
    problems: list[str] = []
    for shard, store in twin.shards.items():
        problems += compare(client, layout, shard, store)
    assert len(twin.shards) == 3
    # The batches held what makes the comparison worth it.
    ops = [store.ops for store in twin.shards.values()]
    assert sum(o["rejected:duplicate_event_id"] for o in ops) > 0
    assert sum(o["late"] for o in ops) > 0
    assert any(store.tables["visit"] for store in twin.shards.values())
    assert any(store.visitor_views for store in twin.shards.values())
    trimmed = [
        n for s in twin.shards.values() for (_, f), n in s.counters.items() if "trimmed" in f
    ]
    assert len(trimmed) > 10 and min(trimmed) > 0
    assert problems == [], "\n".join(problems[:30])
