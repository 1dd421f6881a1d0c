"""The pure aggregator on hand-built events, against hand-computed answers."""

from __future__ import annotations

from streams.aggregators import ANY, AggregatorConfig, BatchDelta, KpiAggregator, ShardMemory, field
from streams.aggregators.memory import (
    View,
    decode_views,
    encode_views,
)
from streams.common.keys import CONVERSATION_TABLE, HOLDING_ZSET, VISIT_TABLE, WAITING_ZSET
from streams.common.timebuckets import Bucket, BucketClock, Granularity
from streams.ingest.events import Event, OrderLine, Rejection, RejectReason

DAY = 86_400
# 2026-11-11T12:00:00Z = 20:00 in Shanghai; the business day began 2026-11-10T16:00Z.
T0 = 1_794_398_400_000
DAY_START = 1_794_326_400
MIN = 60_000
RETENTION = {
    Granularity.MINUTE: 2 * DAY,
    Granularity.HOUR: 8 * DAY,
    Granularity.DAY: 400 * DAY,
    Granularity.WEEK: 400 * DAY,
    Granularity.MONTH: 800 * DAY,
}
M0 = Bucket(Granularity.MINUTE, T0 // 1000)
HOUR = Bucket(Granularity.HOUR, T0 // 1000)
TODAY = Bucket(Granularity.DAY, DAY_START)


def aggregator(late_after_ms: int = 60_000) -> KpiAggregator:
    config = AggregatorConfig(RETENTION, late_after_ms=late_after_ms)
    return KpiAggregator(BucketClock("Asia/Shanghai"), config)


def event(kind: str, ms: int, **attrs: object) -> Event:
    return Event(kind, f"e{ms}", ms, attrs)


def view(
    ms: int,
    visitor: str,
    page: str = "/",
    page_type: str = "home",
    channel: str = "search",
    **extra: object,
) -> Event:
    return event(
        "page_view",
        ms,
        visitor_id=visitor,
        page=page,
        page_type=page_type,
        channel=channel,
        **extra,
    )


def run(
    events: list[Event | Rejection],
    memory: ShardMemory | None = None,
    now_ms: int = T0 + 3 * 3_600_000,
) -> tuple[BatchDelta, ShardMemory]:
    memory = memory or ShardMemory()
    return aggregator().aggregate(events, memory, now_ms), memory


def test_page_views_and_visitors_per_bucket_and_dimension() -> None:
    events: list[Event | Rejection] = [
        view(T0, "a"),
        view(T0 + 10_000, "a"),
        view(T0 + 61_000, "b", device="app"),
        view(T0 + 62_000, "a", channel="ads", campaign="double11"),
    ]
    delta, _ = run(events)
    m1 = Bucket(Granularity.MINUTE, T0 // 1000 + 60)
    assert delta.counters[(M0, "pv")] == 2
    assert delta.counters[(m1, "pv")] == 2
    assert delta.counters[(m1, "pv|channel=ads")] == 1
    assert delta.counters[(HOUR, "pv|channel=search")] == 3
    assert delta.counters[(TODAY, "pv|campaign=double11")] == 1
    assert delta.counters[(TODAY, "pv|device=app")] == 1
    assert delta.counters[(TODAY, "pv|page_type=home")] == 4
    assert delta.distinct[(M0, "uv|channel=search")] == {"a"}
    assert delta.distinct[(m1, field("uv", ANY, ANY))] == {"a", "b"}
    assert delta.distinct[(TODAY, "uv|channel=search")] == {"a", "b"}
    assert delta.distinct[(TODAY, "unique_pv|_all=_all")] == {"a\x1f/", "b\x1f/"}
    assert (M0, "unique_pv|_all=_all") not in delta.distinct  # business days only
    assert delta.ranked[(HOUR, "page_views")] == {"/": 4}
    assert (M0, "page_views") not in delta.ranked  # no rankings per minute
    assert (delta.consumed, delta.accepted, delta.late, delta.watermark_ms) == (
        4,
        4,
        0,
        T0 + 62_000,
    )


def test_rejections_are_counted_but_change_no_kpi() -> None:
    events: list[Event | Rejection] = [
        Rejection(RejectReason.MALFORMED_JSON, "x"),
        view(T0, "a"),
        Rejection(RejectReason.MALFORMED_JSON, "y"),
        Rejection(RejectReason.TOO_OLD, "z"),
    ]
    delta, _ = run(events)
    assert delta.rejected == {RejectReason.MALFORMED_JSON: 2, RejectReason.TOO_OLD: 1}
    assert (delta.consumed, delta.accepted) == (4, 1)
    assert sum(v for (b, name), v in delta.counters.items() if name == "pv") == 5  # m,h,d,w,M


def test_late_events_count_in_their_own_buckets_and_as_late() -> None:
    memory = ShardMemory(watermark_ms=T0 + 600_000)
    events: list[Event | Rejection] = [
        view(T0 + 540_000, "a"),
        view(T0 + 539_999, "b"),
        view(T0, "c"),
    ]
    delta, memory = run(events, memory)
    assert delta.late == 2  # 60.001 s and 600 s behind; exactly 60 s is on time
    assert delta.counters[(M0, "pv")] == 1
    assert memory.watermark_ms == T0 + 600_000


def test_expired_buckets_are_skipped_but_longer_ones_kept() -> None:
    delta, _ = run([view(T0, "a")], now_ms=T0 + 3 * DAY * 1000)
    grans = {bucket.granularity for bucket, name in delta.counters if name == "pv"}
    assert grans == {Granularity.HOUR, Granularity.DAY, Granularity.WEEK, Granularity.MONTH}


def test_empty_batch() -> None:
    delta, _ = run([], ShardMemory(watermark_ms=5))
    assert (delta.consumed, delta.late, delta.watermark_ms, len(delta.counters)) == (0, 0, 5, 0)


def test_sessions_bounce_exit_time_on_page_and_duration() -> None:
    # Visitor a: views at 0, 2 min (product), 5 min -> one session of 3 views, 5 min long.
    # Visitor b: one view at 1 min -> a bounce.  Visitor c: views at 0 and 40 min ->
    # two sessions (gap > 30 min), both bounces.  A flush view at 80 min closes everything
    # but itself (its own session stays open).
    events: list[Event | Rejection] = [
        view(T0, "a", "/"),
        view(T0, "c", "/c", channel="ads", campaign="double11"),
        view(T0 + 1 * MIN, "b", "/b"),
        view(T0 + 2 * MIN, "a", "/p/1", "product", product_id="p1", brand="acme"),
        view(T0 + 5 * MIN, "a", "/cart", "cart"),
        view(T0 + 40 * MIN, "c", "/c2"),
        view(T0 + 80 * MIN, "flush", "/"),
    ]
    delta, memory = run(events)
    c = delta.counters
    assert c[(TODAY, "sessions")] == 5  # a, b, c twice, flush
    assert c[(TODAY, "sessions|channel=search")] == 4
    assert c[(TODAY, "ad_landings|campaign=double11")] == 1
    assert c[(TODAY, "sessions_closed")] == 4
    assert c[(TODAY, "bounces")] == 3
    assert c[(TODAY, "session_views")] == 6
    assert c[(TODAY, "session_duration_ms")] == 5 * MIN
    assert c[(TODAY, "time_on_page_ms")] == 5 * MIN
    assert c[(TODAY, "time_on_page_views")] == 2
    assert c[(TODAY, "time_on_page_ms|page_type=home")] == 2 * MIN
    assert c[(TODAY, "time_on_page_ms|page_type=product")] == 3 * MIN
    assert c[(TODAY, "exits")] == 4
    assert c[(TODAY, "exits|page_type=cart")] == 1
    assert c[(TODAY, "exits|page_type=home")] == 3
    assert delta.ranked[(TODAY, "page_exits")] == {"/cart": 1, "/b": 1, "/c": 1, "/c2": 1}
    # Exits land in the buckets of the session's last view.
    assert c[(Bucket(Granularity.MINUTE, T0 // 1000 + 300), "exits")] == 1
    assert delta.ranked[(TODAY, "product_views")] == {"p1": 1}
    assert delta.distinct[(TODAY, "product_viewers|channel=search")] == {"a"}
    # Every visitor's views are kept while a view within the allowed lateness (3 h) could
    # still join their visits.
    assert set(memory.visits) == {"a", "b", "c", "flush"}
    assert [v.page for v in memory.visits["c"]] == ["/c", "/c2"]
    assert delta.state_put[(VISIT_TABLE, "flush")] == encode_views(memory.visits["flush"])
    assert delta.state_del == set()


def test_sessions_continue_across_batches_through_memory() -> None:
    memory = ShardMemory()
    agg = aggregator()
    now = T0 + 3_600_000
    agg.aggregate([view(T0, "a", "/1")], memory, now)
    delta = agg.aggregate([view(T0 + 10 * MIN, "a", "/2")], memory, now)
    assert delta.counters[(TODAY, "time_on_page_ms")] == 10 * MIN
    assert (TODAY, "sessions") not in delta.counters
    stored = delta.state_put[(VISIT_TABLE, "a")]
    restored = ShardMemory.from_tables(memory.watermark_ms, {VISIT_TABLE: {"a": stored}})
    assert restored.visits["a"] == [
        View(T0, "/1", "home", "search", "", ""),
        View(T0 + 10 * MIN, "/2", "home", "search", "", ""),
    ]
    assert decode_views(stored) == restored.visits["a"]


def test_visits_are_forgotten_once_no_late_view_can_reach_them() -> None:
    memory = ShardMemory()
    agg = aggregator()
    now = T0 + 6 * 3_600_000
    agg.aggregate([view(T0, "a")], memory, now)
    # 3 h 30 min + 1 ms later: a's visit ended at T0 + 30 min, and the allowed lateness
    # (3 h) no longer reaches it.
    delta = agg.aggregate([view(T0 + 210 * MIN + 1, "b")], memory, now)
    assert set(memory.visits) == {"b"}
    assert delta.state_del == {(VISIT_TABLE, "a")}
    assert delta.counters[(TODAY, "bounces")] == 1  # a's visit closed in this batch


def test_orders_gmv_buyers_and_repeat_purchase() -> None:
    line = OrderLine("p1", "shoes", "acme", 2, 9_900)
    events: list[Event | Rejection] = [
        event(
            "order_created",
            T0,
            visitor_id="v1",
            order_id="o1",
            channel="ads",
            campaign="double11",
            amount=9_900,
        ),
        event(
            "order_paid",
            T0 + MIN,
            visitor_id="v1",
            member_id="m1",
            order_id="o1",
            channel="ads",
            campaign="double11",
            amount=9_900,
            items=(line,),
            member_registered_at=T0 - 3_600_000,
        ),
        event(
            "order_paid", T0 + 2 * MIN, visitor_id="v2", order_id="o2", channel="search", amount=100
        ),
        event(
            "order_refunded",
            T0 + 3 * MIN,
            visitor_id="v2",
            order_id="o2",
            channel="search",
            amount=100,
            returned=True,
        ),
        event("review", T0 + 4 * MIN, visitor_id="v1", order_id="o1", rating=5),
        event("review", T0 + 4 * MIN, visitor_id="v2", order_id="o2", rating=3),
    ]
    delta, _ = run(events)
    c = delta.counters
    assert c[(TODAY, "orders_created|campaign=double11")] == 1
    assert c[(TODAY, "orders_paid")] == 2
    assert c[(TODAY, "gmv_cents")] == 10_000
    assert c[(TODAY, "gmv_cents|channel=ads")] == 9_900
    assert c[(TODAY, "refund_cents")] == 100
    assert c[(TODAY, "orders_returned")] == 1
    assert c[(TODAY, "units_sold")] == 2
    assert (c[(TODAY, "reviews")], c[(TODAY, "good_reviews")]) == (2, 1)
    assert delta.distinct[(TODAY, "payers|_all=_all")] == {"v1", "v2"}
    assert delta.distinct[(TODAY, "new_member_payers|_all=_all")] == {"m1"}
    assert delta.ranked[(TODAY, "brand_sales")] == {"acme": 9_900}
    assert [buyer for _, buyer in delta.repeat_buyers] == ["m1", "v2"]
    assert {b.granularity for b in delta.repeat_buyers[0][0]} == {
        Granularity.DAY,
        Granularity.WEEK,
        Granularity.MONTH,
    }


def test_conversations_response_times_waiting_and_agents() -> None:
    s = 1000
    events: list[Event | Rejection] = [
        event("customer_message", T0, conversation_id="c1"),
        event("bot_message", T0 + 5 * s, conversation_id="c1"),
        event("customer_message", T0 + 10 * s, conversation_id="c1"),  # still the same wait
        event("agent_message", T0 + 40 * s, conversation_id="c1", agent_id="ann"),  # 40 s
        event("customer_message", T0 + 60 * s, conversation_id="c1"),
        event("agent_message", T0 + 70 * s, conversation_id="c1", agent_id="bob"),  # 10 s
        event("customer_message", T0 + 20 * s, conversation_id="c2"),
        event("agent_message", T0 + 45 * s, conversation_id="c2", agent_id="ann"),  # 25 s
        event("conversation_closed", T0 + 90 * s, conversation_id="c2"),
        event("customer_message", T0 + 100 * s, conversation_id="c3"),  # left waiting
        event("complaint_opened", T0 + 30 * s, conversation_id="c1", complaint_id="k1"),
        event(
            "complaint_resolved",
            T0 + 330 * s,
            conversation_id="c1",
            complaint_id="k1",
            satisfied=True,
        ),
    ]
    delta, memory = run(events)
    c = delta.counters
    assert c[(TODAY, "cs_conversations")] == 3
    assert c[(TODAY, "cs_responses")] == 3
    assert c[(TODAY, "cs_response_ms")] == (40 + 10 + 25) * s
    assert c[(TODAY, "cs_responses_within_sla")] == 2
    assert c[(TODAY, "cs_first_responses")] == 2
    assert c[(TODAY, "cs_first_response_ms")] == (40 + 25) * s
    assert c[(TODAY, "cs_first_responses_within_sla")] == 1
    assert c[(TODAY, "cs_response_bin|le=60")] == 1
    assert c[(TODAY, "cs_response_bin|le=10")] == 1
    assert c[(TODAY, "cs_response_bin|le=30")] == 1
    assert c[(TODAY, "cs_bot_messages")] == 1
    assert c[(TODAY, "cs_conversations_closed")] == 1
    assert (c[(TODAY, "complaint_handling_ms")], c[(TODAY, "complaints_satisfied")]) == (
        300 * s,
        1,
    )
    # c3 waits since its message; c1 moved from ann to bob; c2 (ann) closed. Each entry is
    # live until its conversation's timeout (24 h) after its last message.
    day = 86_400_000
    assert delta.zset_put == {
        (WAITING_ZSET, f"{T0 + 100 * s}\x1fc3"): T0 + 100 * s + day,
        (HOLDING_ZSET, "bob\x1fc1"): T0 + 70 * s + day,
    }
    # Closed or not, each conversation is kept while a late message could still change it.
    assert set(memory.conversations) == {"c1", "c2", "c3"}
    assert (CONVERSATION_TABLE, "c2") in delta.state_put
    assert memory.complaints == {}


def test_cost_reports_and_impressions() -> None:
    events: list[Event | Rejection] = [
        event("cost_report", T0, channel="ads", campaign="double11", spend=12_345, impressions=900),
        event("ad_impression", T0, visitor_id="v", channel="ads", campaign="double11", count=100),
    ]
    delta, _ = run(events)
    assert delta.counters[(TODAY, "spend_cents|campaign=double11")] == 12_345
    assert delta.counters[(TODAY, "ad_impressions|channel=ads")] == 1_000
