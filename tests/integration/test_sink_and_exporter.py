"""The offset guard, the batch processor and the exporter against the real Redis."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from streams.events import RejectReason
from streams.exporter import KpiCollector
from streams.keys import KeyLayout, Shard
from streams.pipeline import DeadLetterList, Record
from streams.runtime import batch_processor, sync_redis
from streams.settings import Settings
from tests.integration.conftest import Stack

pytestmark = pytest.mark.integration

NOW_S = 1_795_745_000.0  # 2026-11-27T02:03:20Z = 10:03:20 in Shanghai
SHARD = Shard("clicks", 0)


def settings_for(stack: Stack) -> Settings:
    return Settings(redis_url=stack.redis_url, redis_prefix=f"u{uuid.uuid4().hex[:8]}")


def page_view(i: int, visitor: str, channel: str, seconds_ago: float) -> bytes:
    return json.dumps(
        {
            "type": "page_view",
            "event_id": f"e{i}",
            "event_time": int((NOW_S - seconds_ago) * 1000),
            "visitor_id": visitor,
            "session_id": "s",
            "page": "/",
            "page_type": "home",
            "channel": channel,
        }
    ).encode()


def records() -> list[Record]:
    """12 records: 10 valid views (visitors a..e), 2 invalid; hand-counted below."""
    raw = [
        page_view(0, "a", "search", 30),
        page_view(1, "b", "search", 30),
        page_view(2, "a", "search", 90),
        page_view(3, "c", "ads", 200),
        b"{broken",
        page_view(5, "d", "weibo", 10),
        page_view(6, "e", "ads", 400),
        page_view(7, "a", "ads", 5),
        b'{"type": "refund"}',
        page_view(9, "b", "direct", 20),
        page_view(10, "c", "ads", 1000),
        page_view(11, "a", "search", 2000),
    ]
    return [Record(offset, value) for offset, value in enumerate(raw)]


def collect(settings: Settings) -> dict[tuple[str, str, str], float]:
    registry = CollectorRegistry()
    from streams.timebuckets import BucketClock

    registry.register(
        KpiCollector(
            sync_redis(settings),
            KeyLayout(settings.redis_prefix),
            BucketClock(settings.business_timezone),
            settings.channels,
            now_s=lambda: NOW_S,
        )
    )
    out = {}
    for family in registry.collect():
        for sample in family.samples:
            labels = sample.labels
            out[
                (
                    sample.name,
                    labels.get("window", ""),
                    labels.get("channel", labels.get("reason", "")),
                )
            ] = sample.value
    return out


async def run_batches(settings: Settings, batches: list[list[Record]]) -> DeadLetterList:
    client = aioredis.Redis.from_url(settings.redis_url)
    dead = DeadLetterList()
    try:
        processor = batch_processor(settings, client, dead)
        processor.clock_ms = lambda: int(NOW_S * 1000)
        for batch in batches:
            await processor.process(SHARD, batch)
    finally:
        await client.aclose()
    return dead


def test_overlapping_and_repeated_batches_apply_once(stack: Stack) -> None:
    settings = settings_for(stack)
    rs = records()
    # Batches overlap and repeat, as after a crash between apply and Kafka commit.
    dead = asyncio.run(run_batches(settings, [rs[0:5], rs[3:9], rs[0:9], rs[9:12], rs]))
    got = collect(settings)
    # Day (10:03:20 CST; all events after 00:00): search a,b,a,a = 4; ads c,e,a,c = 4;
    # other (weibo) d = 1; direct b = 1.
    assert got[("shop_page_views", "day", "search")] == 4
    assert got[("shop_page_views", "day", "ads")] == 4
    assert got[("shop_page_views", "day", "other")] == 1
    assert got[("shop_page_views", "day", "direct")] == 1
    assert got[("shop_unique_visitors", "day", "ads")] == 3  # c, e, a
    assert got[("shop_unique_visitors_all_channels", "day", "")] == 5
    # Last 5 minutes = 09:59:00-10:03:59: ages 30, 30, 90, 200, 10, 5, 20 s (not 400, 1000, 2000).
    assert sum(v for (n, w, _), v in got.items() if n == "shop_page_views" and w == "5m") == 7
    assert got[("shop_unique_visitors_all_channels", "5m", "")] == 4  # a, b, c, d
    # Current minute 10:03:00-10:03:20: ages 10, 5, 20 s -> d (other), a (ads), b (direct).
    assert got[("shop_page_views", "minute", "ads")] == 1
    assert got[("shop_events_consumed_total", "", "")] == 12
    assert got[("shop_events_rejected_total", "", "malformed_json")] == 1
    assert got[("shop_events_rejected_total", "", "unknown_type")] == 1
    assert got[("shop_exporter_redis_up", "", "")] == 1
    assert [(offset, rej.reason) for _, offset, rej, _ in dead.items] == [
        (4, RejectReason.MALFORMED_JSON),
        (8, RejectReason.UNKNOWN_TYPE),
    ]


def test_stale_expected_offset_is_refused_and_changes_nothing(stack: Stack) -> None:
    settings = settings_for(stack)

    async def scenario() -> tuple[bool, int | None]:
        client = aioredis.Redis.from_url(settings.redis_url)
        try:
            processor = batch_processor(settings, client, DeadLetterList())
            processor.clock_ms = lambda: int(NOW_S * 1000)
            await processor.process(SHARD, records()[:6])
            sink = processor.sink
            stale = await sink.load_state(SHARD)
            await processor.process(SHARD, records()[6:])
            delta = processor.aggregator.aggregate([], None, int(NOW_S * 1000))
            delta.consumed = 99
            result = await sink.apply(SHARD, stale, 100, delta, int(NOW_S * 1000))
            return result.applied, result.state.applied_offset
        finally:
            await client.aclose()

    applied, offset = asyncio.run(scenario())
    assert (applied, offset) == (False, 11)
    assert collect(settings)[("shop_events_consumed_total", "", "")] == 12


def test_exporter_answers_with_up_zero_when_redis_is_unreachable(stack: Stack) -> None:
    from tests.integration.conftest import free_port

    settings = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    got = collect(settings)
    assert got[("shop_exporter_redis_up", "", "")] == 0
    assert not any(name == "shop_page_views" for name, _, _ in got)
