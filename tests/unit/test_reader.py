"""The store's reader against the in-memory twin, and the families on hand-built figures.

Hand-counted values only: page views placed at chosen times, read as of chosen moments.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from prometheus_client.core import Metric

from streams.aggregators import ShardMemory
from streams.common.keys import ANY, KeyLayout, Shard, field
from streams.common.settings import Settings
from streams.common.timebuckets import Bucket, BucketClock, Granularity
from streams.ingest.events import Event, TopicKind
from streams.kpi.formulas import WindowFigures
from streams.metrics.families import ITEM_LABEL_MAX, FamilyBuilder, item_label
from streams.metrics.windows import Precision, windows_as_of, windows_at
from streams.replay.dry_run import dry_run_summary
from streams.store.memory_reads import MemoryReads
from streams.store.memory_sink import MemorySink
from streams.store.reader import (
    ClosedCache,
    ExitPages,
    Labels,
    StoreFigures,
    StoreReader,
    Window,
)
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


# --- exact top n over shards (TPUT), sealed parts merged once, sealed counters kept ---


def ranked_sink(per_shard: dict[int, dict[str, int]], bucket: Bucket) -> MemorySink:
    """Product views per clickstream partition, as the apply leaves them."""
    sink = MemorySink()
    for partition, scores in per_shard.items():
        store_ = sink.shards[Shard("clicks", partition)]
        store_.applied = 0
        store_.ranked[(bucket, "product_views")] = Counter(scores)
    return sink


def top_of(sink: MemorySink, bucket: Bucket, top_n: int) -> list[tuple[str, int]]:
    read = StoreReader(
        MemoryReads(sink, LAYOUT), LAYOUT, LABELS, {"clicks": TopicKind.CLICKSTREAM}, top_n=top_n
    )
    figures = read.read(bucket.start + 30, [Window("day", (bucket,))], ranked=("day",))
    scores = figures.rankings[("day", "product_views")]
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:top_n]


def test_the_top_n_counts_a_member_that_tops_no_shard() -> None:
    # top_n=1 asks each shard for its 3 best. "x" is 4th on both shards (5 + 5 = 10),
    # while each shard's leaders score 6, 6 and 6 there and 0 elsewhere: x is the true
    # top 1 but in no shard's list. Hand-computed totals: x 10, every other member 6.
    day = Bucket(Granularity.DAY, DAY_START_MS // 1000)
    sink = ranked_sink(
        {
            0: {"a": 6, "b": 6, "c": 6, "x": 5},
            1: {"d": 6, "e": 6, "f": 6, "x": 5},
        },
        day,
    )
    assert top_of(sink, day, 1) == [("x", 10)]


def test_the_top_n_sums_a_leader_with_its_scores_below_other_shards_lists() -> None:
    # "a" leads shard 0 (50) and is 4th on shard 1 (2); "b" has 30 + 30. Exact: b 60, a 52.
    day = Bucket(Granularity.DAY, DAY_START_MS // 1000)
    per_shard = {
        0: {"a": 50, "b": 30, "c": 1, "d": 1},
        1: {"b": 30, "e": 20, "f": 20, "g": 20, "a": 2},
    }
    sink = ranked_sink(per_shard, day)
    assert top_of(sink, day, 1) == [("b", 60)]
    scores = dict(top_of(sink, day, 2))
    assert scores == {"b": 60, "a": 52}


def test_the_top_n_matches_the_brute_force_sum_on_many_random_spreads() -> None:
    import random

    day = Bucket(Granularity.DAY, DAY_START_MS // 1000)
    rng = random.Random(7)
    for _ in range(200):
        shards = rng.randint(1, 5)
        members = [f"m{i}" for i in range(rng.randint(1, 40))]
        per_shard = {
            p: {
                m: rng.choice([0, 1, 1, 2, 3, 5, 8, 30])
                for m in rng.sample(members, len(members) // 2 + 1)
            }
            for p in range(shards)
        }
        per_shard = {p: {m: v for m, v in s.items() if v} for p, s in per_shard.items()}
        total: Counter[str] = Counter()
        for scores in per_shard.values():
            total.update(scores)
        top_n = rng.randint(1, 6)
        want = sorted(total.values(), reverse=True)[:top_n]
        got = top_of(ranked_sink(per_shard, day), day, top_n)
        assert [v for _, v in got] == want
        assert all(total[m] == v for m, v in got)


def test_sealed_parts_are_merged_once_and_a_late_write_makes_a_new_union() -> None:
    # Views on the first three days of a week (Mon 2026-11-09 in Shanghai), read on the
    # Thursday: the week's UV over its days is 3 (a, b, c); Mon-Wed are sealed and merged.
    monday = DAY_START_MS - 2 * 86_400_000  # DAY_START is Wed 2026-11-11
    events = [view(monday + 3 * H, "a"), view(monday + 86_400_000 + 3 * H, "b")]
    events += [view(monday + 2 * 86_400_000 + 3 * H, "c")]
    thursday_s = (monday + 3 * 86_400_000) / 1000 + 10 * 3600
    sink = MemorySink(clock=CLOCK)
    shard = Shard("clicks", 0)
    agg, memory = aggregator(), ShardMemory()
    now_ms = int(thursday_s * 1000)
    assert asyncio.run(
        sink.apply(shard, None, 0, agg.aggregate(events, memory, now_ms), now_ms)
    ).applied
    reads = MemoryReads(sink, LAYOUT)
    read = StoreReader(reads, LAYOUT, LABELS, {"clicks": TopicKind.CLICKSTREAM})
    cache = ClosedCache()

    def week_uv() -> int:
        week = {w.name: w for w in windows_at(CLOCK, thursday_s, 300)}["week"]
        return read.read(thursday_s, [week], cache=cache).windows["week"].d("uv")

    assert week_uv() == 3
    merged = [key for key in reads.merged if key.endswith(":" + field("uv", ANY, ANY))]
    assert len(merged) == 1 and LAYOUT.parse(merged[0]).kind == "merged"
    assert week_uv() == 3 and len(reads.merged) == len(cache.merged)  # no new merge
    # A late view into Tuesday by a new visitor: counted at the next read, in a new union.
    late = agg.aggregate([view(monday + 86_400_000 + 5 * H, "d")], memory, now_ms)
    assert asyncio.run(sink.apply(shard, 0, 1, late, now_ms)).applied
    assert week_uv() == 4
    assert merged[0] not in reads.merged  # the superseded union was deleted
    # A union that vanished (eviction, restart) is seen, and the figures read part by part.
    reads.merged.clear()
    assert week_uv() == 4
    assert week_uv() == 4


def test_sealed_counters_are_kept_until_a_late_write_and_future_days_are_not_read() -> None:
    moment = DAY_START_MS / 1000 + 86_400 + 10 * 3600
    windows = {w.name: w for w in windows_at(CLOCK, moment, 300)}
    month = windows["month"]
    assert all(b.start <= moment + 300 + 120 for b in month.distinct_buckets)
    assert len(month.distinct_buckets) == 12  # Nov 1 to Nov 12
    # At 10:00:00 the minutes ended by 09:58:00 are sealed: 09:57 back to 09:31, 27 of 30.
    assert len(windows["30m"].sealed) == 27
    sink = MemorySink(clock=CLOCK)
    shard = Shard("clicks", 0)
    agg, memory = aggregator(), ShardMemory()
    minute = int(moment // 60 * 60)
    views = [view((minute - 600) * 1000 + 5_000, "a"), view((minute - 600) * 1000 + 9_000, "b")]
    now_ms = int(moment * 1000)
    assert asyncio.run(
        sink.apply(shard, None, 0, agg.aggregate(views, memory, now_ms), now_ms)
    ).applied
    read = reader(sink)
    cache = ClosedCache()

    def pv_30m() -> int:
        w = {w.name: w for w in windows_at(CLOCK, moment, 300)}["30m"]
        return read.read(moment, [w], cache=cache).windows["30m"].c("pv")

    assert pv_30m() == 2
    ten_ago = Bucket(Granularity.MINUTE, minute - 600)
    assert ten_ago in cache.counters
    sink.shards[shard].counters[(ten_ago, "pv")] += 100  # a change no apply counted
    assert pv_30m() == 2  # served from the kept counters
    sink.shards[shard].counters[(ten_ago, "pv")] -= 100
    late = agg.aggregate([view((minute - 600) * 1000 + 20_000, "c")], memory, now_ms)
    assert asyncio.run(sink.apply(shard, 0, 1, late, now_ms)).applied
    assert pv_30m() == 3


def test_the_live_scrape_reuses_closed_windows_samples_until_a_late_write() -> None:
    from streams.metrics.collector import KpiCollector

    clock_now_ms = NOW_MS
    sink = MemorySink(clock=CLOCK)
    shard = Shard("clicks", 0)
    agg, memory = aggregator(), ShardMemory()
    delta = agg.aggregate(FOUR, memory, clock_now_ms)
    assert asyncio.run(sink.apply(shard, None, 0, delta, clock_now_ms)).applied
    moment = DAY_START_MS / 1000 + 86_400 + 10 * 3600  # FOUR's day is yesterday
    collector = KpiCollector(reader(sink), FamilyBuilder(LABELS), CLOCK, now_s=lambda: moment)

    def every_sample(
        families: list[Metric],
    ) -> list[tuple[str, tuple[tuple[str, str], ...], float]]:
        return sorted(
            (s.name, tuple(sorted(s.labels.items())), s.value) for f in families for s in f.samples
        )

    def yesterday_pv(families: list[Metric]) -> float:
        return samples(families, "shop_page_views", window="yesterday")[0][1]

    fresh = collector.families_at(moment)  # no cache: every sample built from a full read
    first = collector.families_at(moment, cached=True)  # reads and keeps yesterday
    second = collector.families_at(moment, cached=True)  # yesterday's samples reused
    assert every_sample(first) == every_sample(fresh) == every_sample(second)
    assert yesterday_pv(second) == 4
    assert collector._closed_families is not None
    assert "yesterday" in collector._closed_families[0][0]
    # The growth of today against yesterday still reads yesterday's figures.
    assert samples(second, "shop_orders_growth") == samples(fresh, "shop_orders_growth")
    late = agg.aggregate([view(DAY_START_MS + 5 * H, "e")], memory, clock_now_ms)
    assert asyncio.run(sink.apply(shard, 0, 1, late, clock_now_ms)).applied
    assert yesterday_pv(collector.families_at(moment, cached=True)) == 5
    assert yesterday_pv(collector.families_at(moment, cached=True)) == 5


def test_visitors_by_page_views_are_not_summed_over_buckets() -> None:
    # A visitor with one view in each of two hours is no one-view visitor of the day: a
    # window made of several buckets (a day so far, as backfill reads it) has no such bins.
    from collections import Counter as Counter_

    from streams.common.timebuckets import Bucket as Bucket_
    from streams.common.timebuckets import Granularity as Granularity_
    from streams.store.reader import Window as Window_
    from streams.store.reader import _window_counters

    one, two = "visitors_by_views|views=1", "visitors_by_views|views=2"
    h1, h2 = Bucket_(Granularity_.HOUR, 3600), Bucket_(Granularity_.HOUR, 7200)
    counters = {h1: Counter_({one: 1, "pv": 1}), h2: Counter_({one: 1, "pv": 1})}
    assert _window_counters(Window_("hour", (h1,)), counters) == {one: 1, "pv": 1}
    assert _window_counters(Window_("day", (h1, h2), partial=True), counters) == {"pv": 2}
    assert two not in _window_counters(Window_("day", (h1, h2)), counters)
