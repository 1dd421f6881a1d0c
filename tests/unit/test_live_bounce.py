"""The live 跳失率 (visitors with one page view / visitors), by hand, through the store's twin."""

from __future__ import annotations

import asyncio
from collections import Counter

from streams.aggregators import AggregatorConfig, KpiAggregator, ShardMemory
from streams.common.keys import Shard
from streams.common.timebuckets import Bucket, BucketClock, Granularity
from streams.ingest.events import Event
from streams.kpi.formulas import WindowFigures, live_bounce_rate, visitors_by_views
from streams.store.memory_sink import MemorySink

DAY = 86_400
H, MIN = 3_600_000, 60_000
# 2026-11-11 00:00 in Shanghai (a pure test: no service judges this date).
DAY_START_MS = 1_794_326_400_000
RETENTION = {g: 40 * DAY for g in Granularity}
LATENESS = 3 * H
SHARD = Shard("clickstream", 0)


def at(hours: float, minutes: float = 0) -> int:
    return DAY_START_MS + int(hours * H + minutes * MIN)


def view(ms: int, visitor: str, n: list[int] = [0]) -> Event:  # noqa: B006 - an id counter
    n[0] += 1
    attrs = {"visitor_id": visitor, "page": "/", "page_type": "home", "channel": "search"}
    return Event("page_view", f"e{n[0]}", ms, attrs)


def figures(sink: MemorySink, bucket: Bucket) -> WindowFigures:
    counters = {name: n for (b, name), n in sink.shards[SHARD].counters.items() if b == bucket}
    return WindowFigures(counters, {})


def applied(batches: list[list[Event]]) -> MemorySink:
    clock = BucketClock("Asia/Shanghai")
    agg = KpiAggregator(clock, AggregatorConfig(RETENTION, allowed_lateness_ms=LATENESS))
    sink, memory = MemorySink(), ShardMemory()
    now_ms = DAY_START_MS + 3 * DAY * 1000
    for offset, batch in enumerate(batches):
        delta = agg.aggregate(batch, memory, now_ms)
        assert asyncio.run(sink.apply(SHARD, offset - 1 if offset else None, offset, delta, now_ms))
    return sink


TEN = Bucket(Granularity.HOUR, at(10) // 1000)
ELEVEN = Bucket(Granularity.HOUR, at(11) // 1000)
TODAY = Bucket(Granularity.DAY, DAY_START_MS // 1000)
EVENTS = [
    view(at(10, 5), "a"),  # one view all day
    view(at(10, 10), "b"),
    view(at(10, 20), "b"),  # two views in the hour
    view(at(10, 50), "c"),
    view(at(11, 10), "c"),  # one view in each hour, two in the day
]


def test_visitors_with_one_view_over_visitors_per_hour_and_day() -> None:
    for batches in ([EVENTS], [[e] for e in EVENTS], [[e] for e in reversed(EVENTS)]):
        sink = applied(batches)
        # 10:00: a and c viewed one page, b two -> 2 of 3
        assert visitors_by_views(figures(sink, TEN)) == (2, 1)
        assert live_bounce_rate(figures(sink, TEN)) == 2 / 3
        assert visitors_by_views(figures(sink, ELEVEN)) == (1, 0)
        assert live_bounce_rate(figures(sink, ELEVEN)) == 1.0
        # the day: only a -> 1 of 3
        assert visitors_by_views(figures(sink, TODAY)) == (1, 2)
        assert live_bounce_rate(figures(sink, TODAY)) == 1 / 3


def test_no_visitors_no_rate() -> None:
    assert live_bounce_rate(WindowFigures({}, {})) is None


def test_page_views_per_visitor_are_dropped_once_the_lateness_has_passed() -> None:
    sink = applied([EVENTS, [view(at(14, 1), "d")]])
    kept = sink.shards[SHARD].visitor_views
    # 14:01 - 3 h lateness = 11:01: only the 10:00 hour is out of reach of a late view
    assert TEN not in kept and ELEVEN in kept and TODAY in kept
    assert kept[TODAY] == Counter({"a": 1, "b": 2, "c": 2, "d": 1})
    assert visitors_by_views(figures(sink, TEN)) == (2, 1)  # the figures stay
    # a view more than the lateness behind the watermark counts in PV, not here
    sink = applied([EVENTS, [view(at(14, 1), "d")], [view(at(10, 30), "a")]])
    assert visitors_by_views(figures(sink, TEN)) == (2, 1)
    assert visitors_by_views(figures(sink, TODAY)) == (2, 2)
    assert sink.shards[SHARD].ops["too_late"] == 1


def test_a_first_batch_drops_the_periods_it_wrote_and_passed() -> None:
    # One batch, the shard's first: views at 00:10 and 05:00; 05:00 - 3 h = 02:00, so the
    # 00:00 and 01:00 hours are out of reach at its end.
    sink = applied([[view(at(0, 10), "a"), view(at(5), "b")]])
    kept = sink.shards[SHARD].visitor_views
    assert Bucket(Granularity.HOUR, at(0) // 1000) not in kept
    assert Bucket(Granularity.HOUR, at(5) // 1000) in kept and TODAY in kept
    assert visitors_by_views(figures(sink, Bucket(Granularity.HOUR, at(0) // 1000))) == (1, 0)


def test_the_end_of_input_drops_the_last_day_even_with_short_timeouts() -> None:
    clock = BucketClock("Asia/Shanghai")
    config = AggregatorConfig(
        RETENTION, allowed_lateness_ms=LATENESS, conversation_timeout_ms=H
    )  # the longest timeout 1 h: the watermark moves 4 h past 10:20, not past midnight
    agg = KpiAggregator(clock, config)
    sink, memory = MemorySink(), ShardMemory()
    now_ms = DAY_START_MS + 3 * DAY * 1000
    delta = agg.aggregate(EVENTS, memory, now_ms)
    assert asyncio.run(sink.apply(SHARD, None, 0, delta, now_ms))
    assert asyncio.run(sink.apply(SHARD, 0, 1, agg.end_input(memory, now_ms), now_ms))
    assert dict(sink.shards[SHARD].visitor_views) == {}
    assert visitors_by_views(figures(sink, TODAY)) == (1, 2)
