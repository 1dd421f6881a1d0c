"""A flood of distinct label values cannot create Prometheus series at will."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from streams.common.keys import Shard
from streams.common.settings import Settings
from streams.worker.pipeline import DeadLetterList, Record
from streams.worker.runtime import batch_processor, kpi_collector
from tests.integration.clock import Clock
from tests.integration.conftest import Stack

pytestmark = pytest.mark.integration

SERIES_CAP = 5_000
"""Upper bound on one scrape's series with the default allow-lists and top-20 rankings."""
FLOOD = 100_000


def registry_at(settings: Settings, clock: Clock) -> CollectorRegistry:
    collector = kpi_collector(settings)
    collector.now_s = clock.now
    registry = CollectorRegistry()
    registry.register(collector)
    return registry


def count_series(settings: Settings, clock: Clock) -> int:
    return sum(len(family.samples) for family in registry_at(settings, clock).collect())


def test_series_count_stays_under_the_cap(
    stack: Stack, clock: Clock, measure: Callable[[str, str], None]
) -> None:
    settings = Settings(redis_url=stack.redis_url, redis_prefix=f"f{uuid.uuid4().hex[:8]}")
    base_ms = clock.now_ms() - 60_000

    def flood(i: int) -> bytes:
        return json.dumps(
            {
                "type": "page_view",
                "event_id": f"f{i}",
                "event_time": base_ms + i % 50_000,
                "visitor_id": f"v{i}",
                "page": f"/page/{i}",
                "page_type": f"type{i}",
                "channel": f"channel-{i}",
                "campaign": f"campaign-{i}",
                "device": f"dev{i}",
                "product_id": f"p{i}",
                "brand": f"b{i}",
                "category": f"c{i}",
            }
        ).encode()

    async def feed() -> None:
        client = aioredis.Redis.from_url(settings.redis_url)
        try:
            processor = batch_processor(settings, client, DeadLetterList())
            processor.clock_ms = clock.now_ms
            for partition in range(4):
                shard = Shard(settings.clickstream_topic, partition)
                start = partition * FLOOD // 4
                for first in range(start, start + FLOOD // 4, 5_000):
                    batch = [Record(i - start, flood(i)) for i in range(first, first + 5_000)]
                    await processor.process(shard, batch)
        finally:
            await client.aclose()

    empty = count_series(settings, clock)
    asyncio.run(feed())
    flooded = count_series(settings, clock)
    measure(
        "label flood: series before / after 100,000 distinct values", f"{empty:,} / {flooded:,}"
    )
    assert flooded <= SERIES_CAP
    registry = registry_at(settings, clock)
    labels = {
        (k, v) for family in registry.collect() for s in family.samples for k, v in s.labels.items()
    }
    assert ("channel", "other") in labels
    allowed = {
        "channel": set(settings.channels),
        "campaign": set(settings.campaigns),
        "device": set(settings.devices),
        "page_type": set(settings.page_types),
    }
    strays = {(k, v) for k, v in labels if k in allowed and v not in allowed[k]}
    assert strays == set()
    items = [v for k, v in labels if k in ("item", "page")]
    assert 0 < len(items) <= 20 * 5 * 11  # top 20 x ranked windows x ranking families
