"""The store's reader against the in-memory twin, and the families on hand-built figures.

Hand-counted values only: page views placed at chosen times, read as of chosen moments.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from prometheus_client.core import Metric

from streams.aggregators import ShardMemory
from streams.common.keys import KeyLayout, Shard, field
from streams.common.settings import Settings
from streams.common.timebuckets import Bucket, BucketClock, Granularity
from streams.ingest.events import Event, TopicKind
from streams.kpi.formulas import WindowFigures
from streams.metrics.families import ITEM_LABEL_MAX, FamilyBuilder, item_label
from streams.metrics.windows import Precision, windows_as_of, windows_at
from streams.replay.dry_run import dry_run_summary
from streams.store.memory_reads import MemoryReads
from streams.store.memory_sink import MemorySink
from streams.store.reader import ClosedCache, ExitPages, Labels, StoreFigures, StoreReader
from tests.unit.test_event_time import DAY_START_MS, MIN, NOW_MS, H, aggregator, view

LABELS = Labels(("search", "ads"), ("home", "product"), ("pc", "mobile"), ())
LAYOUT = KeyLayout("t")
CLOCK = BucketClock("Asia/Shanghai")


def store(batches: dict[Shard, list[Event]]) -> MemorySink:
    """The twin after each shard applied its events as one batch."""
    sink = MemorySink()
    agg = aggregator()
    for offset, (shard, events) in enumerate(batches.items()):
        delta = agg.aggregate(events, ShardMemory(), NOW_MS)
        assert asyncio.run(sink.apply(shard, None, offset, delta, NOW_MS)).applied
    return sink


def reader(sink: MemorySink, exit_min_views: int = 20) -> StoreReader:
    return StoreReader(
        MemoryReads(sink, LAYOUT),
        LAYOUT,
        LABELS,
        {"clicks": TopicKind.CLICKSTREAM},
        top_n=3,
        exit_min_views=exit_min_views,
    )


def always(_: Bucket) -> bool:
    return True


# Page views at 01:00, 01:45, 02:00 and 03:00 of one day, by four visitors.
FOUR = [
    view(DAY_START_MS + 1 * H, "a"),
    view(DAY_START_MS + 1 * H + 45 * MIN, "b"),
    view(DAY_START_MS + 2 * H, "c"),
    view(DAY_START_MS + 3 * H, "d"),
]


def as_of(
    sink: MemorySink, moment_ms: int, kept=always
) -> tuple[dict[str, WindowFigures], Precision]:  # type: ignore[no-untyped-def]
    windows, precision = windows_as_of(CLOCK, moment_ms / 1000, kept)
    return reader(sink).read(moment_ms / 1000, windows).windows, precision


def test_backfill_steps_count_only_events_up_to_their_moment() -> None:
    sink = store({Shard("clicks", 0): FOUR})
    at_0130, precision = as_of(sink, DAY_START_MS + 1 * H + 30 * MIN)
    assert precision is Precision.MINUTE
    assert at_0130["day"].c("pv") == 1
    assert at_0130["hour"].c("pv") == 1
    assert at_0130["day"].d("uv") == 1
    at_0230, _ = as_of(sink, DAY_START_MS + 2 * H + 30 * MIN)
    assert at_0230["day"].c("pv") == 3
    assert at_0230["hour"].c("pv") == 1
    assert at_0230["day"].d("uv") == 3
    # The moment's own minute counts (as the live "minute" window does).
    at_0100, _ = as_of(sink, DAY_START_MS + 1 * H + 20_000)
    assert (at_0100["minute"].c("pv"), at_0100["day"].c("pv")) == (1, 1)


def test_beyond_the_minute_retention_a_step_counts_to_the_end_of_its_hour() -> None:
    sink = store({Shard("clicks", 0): FOUR})

    def hours_only(bucket: Bucket) -> bool:
        return bucket.granularity is not Granularity.MINUTE

    figures, precision = as_of(sink, DAY_START_MS + 1 * H + 30 * MIN, hours_only)
    assert precision is Precision.HOUR
    assert (figures["day"].c("pv"), figures["hour"].c("pv")) == (2, 2)

    def days_only(bucket: Bucket) -> bool:
        return bucket.granularity in (Granularity.DAY, Granularity.WEEK, Granularity.MONTH)

    figures, precision = as_of(sink, DAY_START_MS + 1 * H + 30 * MIN, days_only)
    assert precision is Precision.DAY
    assert figures["day"].c("pv") == 4


def test_day_so_far_reads_no_set_kept_only_per_day() -> None:
    sink = store({Shard("clicks", 0): FOUR})
    figures, _ = as_of(sink, DAY_START_MS + 2 * H + 30 * MIN)
    assert field("unique_pv", "_all", "_all") not in figures["day"].distinct
    live = reader(sink).read(NOW_MS / 1000, windows_at(CLOCK, DAY_START_MS / 1000 + 5 * 3600))
    assert live.windows["day"].d("unique_pv") == 4  # the live day reads its own set


def test_counters_and_sets_are_summed_and_merged_over_shards() -> None:
    sink = store(
        {
            Shard("clicks", 0): [view(DAY_START_MS + H, "a"), view(DAY_START_MS + H, "b")],
            Shard("clicks", 1): [view(DAY_START_MS + H, "a"), view(DAY_START_MS + 2 * H, "c")],
            Shard("ignored", 0): [view(DAY_START_MS + H, "z")],
        }
    )
    got = reader(sink).read(NOW_MS / 1000, windows_at(CLOCK, DAY_START_MS / 1000 + 5 * 3600))
    assert got.windows["day"].c("pv") == 4  # the unconfigured topic is not read
    assert got.windows["day"].d("uv") == 3  # "a" on both shards counts once
    assert got.windows["day"].c("pv", "channel", "search") == 4


def pages(shard: Shard, counts: dict[str, tuple[int, int]], hour: int) -> list[Event]:
    """Per page: (views, exits), one visitor per view. An exit is a visit of that one view;
    the other visitors go on to "/next". A last view two hours on ends the visits."""
    events = []
    for page, (views, exits) in counts.items():
        for k in range(views):
            visitor = f"{shard.id}|{page}|{k}"
            events.append(view(DAY_START_MS + hour * H + k * 1000, visitor, page))
            if k >= exits:
                events.append(view(DAY_START_MS + hour * H + k * 1000 + 500, visitor, "/next"))
    events.append(view(DAY_START_MS + (hour + 2) * H, f"{shard.id}|closer", "/closer"))
    return events


def test_exit_top_is_exact_among_100000_pages_past_the_old_limits() -> None:
    # Floor 10 views. /spread: 5 views on each of two shards, 9 exits of 10: 0.9. On each
    # shard 1,200 pages of 6 views (below the floor in total) outrank it, so a ranking
    # trimmed to 1,000 pages, or 200 candidates per shard, loses it; 300 pages of 12 + 12
    # views sit above the floor; 100,000 distinct pages in all.
    a, b = Shard("clicks", 0), Shard("clicks", 1)
    batches = {}
    for shard, spread_exits in ((a, 5), (b, 4)):
        counts = {"/spread": (5, spread_exits)}
        counts |= {f"/mid/{shard.partition}/{k}": (6, 0) for k in range(1_200)}
        counts |= {f"/popular/{k}": (12, 0) for k in range(300)}
        counts |= {f"/single/{shard.partition}/{k}": (1, 1) for k in range(48_649)}
        batches[shard] = pages(shard, counts, 1)
    sink = store(batches)
    distinct = {e.attrs["page"] for events in batches.values() for e in events}
    assert len(distinct) > 100_000
    got = reader(sink, exit_min_views=10).read(
        NOW_MS / 1000, windows_at(CLOCK, DAY_START_MS / 1000 + 5 * 3600), ranked=("day",)
    )
    exits = got.exit_pages["day"]
    assert (exits.views["/spread"], exits.exits["/spread"]) == (10, 9)
    families = FamilyBuilder(LABELS, top_n=3, exit_min_views=10).families(got)
    rates = samples(families, "shop_top_exit_pages_rate", window="day")
    views = samples(families, "shop_top_exit_pages_views", window="day")
    assert [(labels["page"], value) for labels, value in rates] == [
        ("/next", 1.0),
        ("/spread", 0.9),
        ("/popular/0", 0.0),
    ]
    assert [value for _, value in views] == [2 * 1_200 * 6 + 2 * 300 * 12 + 1, 10, 24]
    bound = samples(families, "shop_ranking_undercount_bound", window="day", ranking="page_views")
    assert bound[0][1] == 0


def samples(families: list[Metric], name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    return [
        (s.labels, s.value)
        for f in families
        for s in f.samples
        if s.name == name and labels.items() <= s.labels.items()
    ]


def test_families_from_hand_built_figures() -> None:
    figures = StoreFigures(
        0.0,
        {
            "day": WindowFigures(
                {
                    "pv": 300,
                    "gmv_cents": 12_345,
                    "orders_paid": 3,
                    field("pv", "channel", "ads"): 100,
                },
                {field("uv", "_all", "_all"): 60, field("payers", "_all", "_all"): 3},
            ),
            "yesterday": WindowFigures({"orders_paid": 2, "gmv_cents": 10_000}, {}),
        },
    )
    families = FamilyBuilder(LABELS).families(figures)
    assert samples(families, "shop_page_views", window="day")[0][1] == 300
    assert samples(families, "shop_gmv_yuan", window="day")[0][1] == 123.45
    assert samples(families, "shop_pv_per_uv", window="day")[0][1] == 5.0
    assert samples(families, "shop_payment_conversion", window="day")[0][1] == 0.05
    assert samples(families, "shop_page_views_by_channel", window="day", channel="ads")[0][1] == 100
    assert samples(families, "shop_orders_growth", window="day")[0][1] == 0.5
    assert samples(families, "shop_payment_conversion", window="yesterday") == []  # no UV


def test_long_items_keep_distinct_labels() -> None:
    one, two = "/p/" + "x" * 200 + "1", "/p/" + "x" * 200 + "2"
    assert item_label(one) != item_label(two)
    assert len(item_label(one)) == ITEM_LABEL_MAX
    assert item_label("/short") == "/short"
    figures = StoreFigures(
        0.0,
        {"day": WindowFigures({}, {})},
        exit_pages={"day": ExitPages(Counter({one: 30, two: 30}), Counter({one: 3, two: 6}))},
    )
    rows = samples(FamilyBuilder(LABELS).families(figures), "shop_top_exit_pages_rate")
    assert len({labels["page"] for labels, _ in rows}) == 2


def test_closed_periods_are_cached_until_a_late_write_changes_them() -> None:
    clock_now_ms = NOW_MS  # three days after DAY_START: the day of FOUR is closed
    sink = MemorySink(clock=CLOCK)
    shard = Shard("clicks", 0)
    agg = aggregator()
    memory = ShardMemory()
    delta = agg.aggregate(FOUR, memory, clock_now_ms)
    assert asyncio.run(sink.apply(shard, None, 0, delta, clock_now_ms)).applied
    read = reader(sink)
    cache = ClosedCache()
    # "yesterday" of a moment the next day is the day of FOUR
    moment = DAY_START_MS / 1000 + 86_400 + 10 * 3600

    def yesterday_pv() -> int:
        figures = read.read(moment, windows_at(CLOCK, moment), ranked=("yesterday",), cache=cache)
        return figures.windows["yesterday"].c("pv")

    assert (yesterday_pv(), cache.served["yesterday"]) == (4, 0)
    assert (yesterday_pv(), cache.served["yesterday"]) == (4, 1)
    # A change that no apply counted is not seen: the figures came from the cache.
    store_ = sink.shards[shard]
    yesterday = Bucket(Granularity.DAY, DAY_START_MS // 1000)
    store_.counters[(yesterday, "pv")] += 100
    assert yesterday_pv() == 4
    store_.counters[(yesterday, "pv")] -= 100
    # A late view into that closed day, applied now, is seen at the very next read.
    late = agg.aggregate([view(DAY_START_MS + 5 * H, "e")], memory, clock_now_ms)
    assert asyncio.run(sink.apply(shard, 0, 1, late, clock_now_ms)).applied
    assert yesterday_pv() == 5
    assert yesterday_pv() == 5 and cache.served["yesterday"] == 3


def test_a_period_just_ended_is_not_cached() -> None:
    just_after = DAY_START_MS / 1000 + 86_400 + 60  # one minute into the next day
    windows = {w.name: w for w in windows_at(CLOCK, just_after)}
    assert not windows["yesterday"].cacheable
    later = {w.name: w for w in windows_at(CLOCK, just_after + 120)}
    assert later["yesterday"].cacheable and not later["day"].cacheable


def test_the_dry_run_table_reads_the_twin_through_the_reader() -> None:
    # FOUR by default settings' clickstream topic: four visitors with one view each; at
    # 03:00 the first three visits have ended (bounces), the fourth has not.
    sink = store({Shard("clickstream", 0): FOUR})
    table = dry_run_summary(sink, Settings()).splitlines()
    assert table[0].split() == [
        "day",
        "PV",
        "UV",
        "sessions",
        "bounce",
        "orders",
        "GMV",
        "buyers",
        "pay",
        "conv",
    ]
    assert table[2].split() == ["2026-11-11", "4", "4", "4", "100.0%", "0", "0.00", "0", "0.00%"]
