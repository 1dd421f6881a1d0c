"""Which topic's shards write each distinct set and each ranking, as the reader assumes.

The reader counts a distinct set only over the shards of the topic that writes it
(:data:`ORDER_SETS`) and looks a ranking up only there (:data:`ORDER_RANKINGS`); a set
written by the other topic too would be undercounted. Checked on generated shop
traffic through the real aggregators, into the store's in-memory twin.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from loadtest.bench_scrape import apply_traffic
from loadtest.shop_generator import generate_shop
from streams.common.keys import Shard, parse_field
from streams.common.settings import Settings, topic_kinds
from streams.ingest.events import TopicKind
from streams.kpi.catalogue import DISTINCT, ORDER_RANKINGS, ORDER_SETS, RANKINGS
from streams.store.memory_sink import MemorySink
from streams.worker.pipeline import BatchProcessor, DeadLetterList
from streams.worker.runtime import aggregator, decode_limits


def test_each_set_and_ranking_is_written_by_the_topic_the_reader_reads_it_on() -> None:
    settings = Settings()
    sink = MemorySink()
    processor = BatchProcessor(
        decode_limits(settings),
        aggregator(settings),
        sink,
        DeadLetterList(),
        {topic: TopicKind(kind) for topic, kind in topic_kinds(settings).items()},
    )
    now_ms = int(time.time() * 1000)
    traffic = generate_shop(seed=3, start_ms=now_ms - 3_600_000, duration_s=3_000, visitors=400)
    asyncio.run(apply_traffic(processor, traffic, settings, Counter[Shard]()))
    sets: dict[str, set[str]] = {"orders": set(), "other": set()}
    rankings: dict[str, set[str]] = {"orders": set(), "other": set()}
    for shard, store in sink.shards.items():
        side = "orders" if shard.topic == settings.orders_topic else "other"
        sets[side] |= {parse_field(name)[0] for _, name in store.distinct}
        rankings[side] |= {name for _, name in store.ranked}
    assert sets["orders"] == ORDER_SETS
    assert sets["other"] & ORDER_SETS == set()
    assert sets["other"] | ORDER_SETS == {c.name for c in DISTINCT}
    assert rankings["orders"] == ORDER_RANKINGS
    assert rankings["other"] & ORDER_RANKINGS == set()
    assert {c.name for c in RANKINGS} <= rankings["other"] | ORDER_RANKINGS
