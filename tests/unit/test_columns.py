"""Page views folded per batch as columns give the increments of the per-event definition."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.aggregators import AggregatorConfig, KpiAggregator, ShardMemory
from streams.aggregators.context import BatchContext
from streams.aggregators.memory import View
from streams.aggregators.traffic import page_view_figures
from streams.aggregators.visits import add_view
from streams.common.timebuckets import Bucket, BucketClock, Granularity
from streams.ingest.events import Event

HOUR_MS = 3_600_000
# Short retentions, so that a batch spread over six hours has views whose buckets are all
# kept, some kept (the minute gone) and none kept.
RETENTION = {
    Granularity.MINUTE: 3_600,
    Granularity.HOUR: 2 * 3_600,
    Granularity.DAY: 3 * 3_600,
    Granularity.WEEK: 4 * 3_600,
    Granularity.MONTH: 5 * 3_600,
}
NOW_MS = 1_794_398_400_000  # 2026-11-11T20:00+08:00

FIELDS = {
    "visitor_id": ["a", "b", "c", "d"],
    "page": ["/", "/p/1", "/p/2", "/c/9", ""],
    "page_type": ["home", "product", "campaign", "search", ""],
    "channel": ["search", "ads", "other", ""],
    "device": ["app", "web", ""],
    "campaign": ["double11", "", "spring"],
    "product_id": ["p1", "p2", ""],
    "category": ["shoes", ""],
    "brand": ["acme", "zeta", ""],
}


@st.composite
def page_views(draw: st.DrawFn) -> list[Event]:
    count = draw(st.integers(0, 60))
    out = []
    for k in range(count):
        ms = NOW_MS - draw(st.integers(0, 6 * HOUR_MS))
        attrs = {}
        for name, values in FIELDS.items():
            value = draw(st.sampled_from([*values, None]))
            if value is not None:  # absent
                attrs[name] = value
        out.append(Event("page_view", f"e{k}", ms, attrs))
    return out


def per_event(ctx: BatchContext, event: Event, buckets: tuple[Bucket, ...]) -> None:
    """The handler as it was before columns: the definition, then the visit."""
    page_view_figures(ctx.delta, event, buckets)
    get = event.attrs.get
    view = View(
        event.event_ms,
        get("page") or "",
        get("page_type") or "",
        get("channel") or "",
        get("device") or "",
        get("campaign") or "",
    )
    add_view(ctx, get("visitor_id") or "", view)


def aggregator() -> KpiAggregator:
    config = AggregatorConfig(RETENTION, allowed_lateness_ms=7 * HOUR_MS)
    return KpiAggregator(BucketClock("Asia/Shanghai"), config)


@settings(max_examples=300, deadline=None)
@given(page_views(), st.integers(1, 4))
def test_columns_give_the_increments_of_the_per_event_definition(
    events: list[Event], batches: int
) -> None:
    columnar, reference = aggregator(), aggregator()
    reference._handlers["page_view"] = per_event
    memories = ShardMemory(), ShardMemory()
    size = max(1, len(events) // batches)
    for start in range(0, max(1, len(events)), size):
        batch = events[start : start + size]
        got = columnar.aggregate(batch, memories[0], NOW_MS)
        expected = reference.aggregate(batch, memories[1], NOW_MS)
        assert {k: n for k, n in got.counters.items() if n} == {
            k: n for k, n in expected.counters.items() if n
        }
        assert dict(got.distinct) == dict(expected.distinct)
        assert {k: dict(v) for k, v in got.ranked.items() if v} == {
            k: dict(v) for k, v in expected.ranked.items() if v
        }
        assert got.state_put == expected.state_put


def test_a_hand_counted_batch() -> None:
    """Three views of two visitors in one minute, counted by hand."""
    events = [
        Event("page_view", "1", NOW_MS, {"visitor_id": "a", "page": "/p/1",
              "page_type": "product", "channel": "ads", "product_id": "p1"}),
        Event("page_view", "2", NOW_MS + 1, {"visitor_id": "a", "page": "/p/1",
              "page_type": "product", "channel": "ads", "product_id": "p1"}),
        Event("page_view", "3", NOW_MS + 2, {"visitor_id": "b", "page": "/",
              "page_type": "home", "channel": "", "device": "app"}),
    ]  # fmt: skip
    delta = aggregator().aggregate(events, ShardMemory(), NOW_MS)
    clock = BucketClock("Asia/Shanghai")
    minute, hour, day, week = clock.buckets(NOW_MS)[:4]
    counters = delta.counters
    assert counters[(minute, "pv")] == 3
    assert counters[(minute, "pv|channel=ads")] == 2
    assert counters[(minute, "pv|page_type=home")] == 1
    assert counters[(minute, "pv|device=app")] == 1
    assert (minute, "pv|channel=") not in counters
    distinct = delta.distinct
    assert distinct[(minute, "uv|_all=_all")] == {"a", "b"}
    assert distinct[(hour, "uv|channel=ads")] == {"a"}
    assert distinct[(day, "unique_pv|_all=_all")] == {"a\x1f/p/1", "b\x1f/"}
    assert distinct[(day, "product_viewers|channel=ads")] == {"a"}
    assert (week, "uv|_all=_all") not in distinct  # read as the union of its days
    assert delta.ranked[(hour, "page_views")] == {"/p/1": 2, "/": 1}
    assert delta.ranked[(day, "product_views")] == {"p1": 2}
    assert (minute, "page_views") not in delta.ranked  # rankings: an hour and longer
