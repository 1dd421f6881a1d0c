"""Sanity of the shop load generator (loadtest/shop_generator.py) and of its own ground truth
(loadtest/shop_truth.py).

The service's decoder is used only as a referee of the messages; the truth's figures
are checked against invariants and against a tiny scenario worked out by hand.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loadtest.shop_generator import (
    STATELESS_TYPES,
    ShopTraffic,
    disorder,
    flush_events,
    generate_shop,
)
from loadtest.shop_truth import (
    ALLOW_LISTS,
    KEY_OF,
    RESPONSE_BINS_S,
    SESSION_TIMEOUT_MS,
    SLA_MS,
    TOPIC_OF,
    ShopTruth,
)
from streams.common import keys
from streams.common.settings import (
    DEFAULT_CAMPAIGNS,
    DEFAULT_CHANNELS,
    DEFAULT_DEVICES,
    DEFAULT_PAGE_TYPES,
    Settings,
)
from streams.ingest.events import EVENT_TYPES, DecodeLimits, Event, Rejection, TopicKind, decode

ZONE = ZoneInfo("Asia/Shanghai")
# Sunday 23:20 to Monday 00:30: the span crosses an hour, a day and an ISO week boundary,
# and is long enough for visitors to come back after more than 30 minutes.
START = int(datetime(2026, 11, 15, 23, 20, tzinfo=ZONE).timestamp() * 1000)
SPAN_S = 70 * 60
END = START + SPAN_S * 1000
LIMITS = DecodeLimits(
    allow_lists={
        "channels": frozenset(DEFAULT_CHANNELS),
        "page_types": frozenset(DEFAULT_PAGE_TYPES),
        "devices": frozenset(DEFAULT_DEVICES),
        "campaigns": frozenset(DEFAULT_CAMPAIGNS),
    },
    max_event_bytes=1_048_576,
    max_future_skew_ms=300_000,
    max_age_ms=30 * 86_400_000,
)


@cache
def traffic(bad_ratio: float = 0.0) -> ShopTraffic:
    """One shared generation per bad ratio (the truth is never flushed here)."""
    return generate_shop(5, START, SPAN_S, 600, bad_ratio=bad_ratio)


def decoded(generated: ShopTraffic) -> list[tuple[str, bytes, bytes, Event | Rejection]]:
    return [
        (kind, key, value, decode(value, LIMITS, END, TopicKind(kind)))
        for kind, messages in generated.messages.items()
        for key, value in messages
    ]


def total(truth: ShopTruth, gran: str, name: str, dim: str = "", value: str = "") -> int:
    return sum(truth.counter(gran, start, name, dim, value) for start in truth.buckets(gran))


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


# --- the messages ------------------------------------------------------------------------


def test_the_schema_copy_matches_the_service() -> None:
    assert {t: (str(spec.topic), spec.key) for t, spec in EVENT_TYPES.items()} == {
        t: (TOPIC_OF[t], KEY_OF[t]) for t in TOPIC_OF
    }
    assert ALLOW_LISTS == {
        "channels": DEFAULT_CHANNELS,
        "page_types": DEFAULT_PAGE_TYPES,
        "devices": DEFAULT_DEVICES,
        "campaigns": DEFAULT_CAMPAIGNS,
    }


def test_the_truths_own_bins_sla_and_session_timeout_match_the_service() -> None:
    # Copies on purpose (an oracle independent of the code under test); checked here.
    defaults = Settings()
    assert RESPONSE_BINS_S == keys.RESPONSE_BINS_S
    assert defaults.sla_seconds * 1000 == SLA_MS
    assert defaults.visit_timeout_minutes * 60_000 == SESSION_TIMEOUT_MS


def test_same_seed_same_messages_other_seed_other_messages() -> None:
    first = generate_shop(3, START, 600, 80)
    again = generate_shop(3, START, 600, 80)
    other = generate_shop(4, START, 600, 80)
    assert first.messages == again.messages
    assert first.messages["clickstream"] != other.messages["clickstream"]


def test_bad_messages_leave_the_valid_ones_unchanged() -> None:
    clean, dirty = traffic(), traffic(0.02)
    assert sum(dirty.truth.rejected.values()) > 0
    for kind, messages in clean.messages.items():
        kept = [
            (key, value) for key, value in dirty.messages[kind] if b'"event_id":"bad' not in value
        ]
        assert kept == messages
    assert dirty.truth.events == clean.truth.events


def test_every_valid_message_is_accepted_and_every_bad_one_rejected_as_recorded() -> None:
    generated = traffic(0.02)
    accepted: Counter[str] = Counter()
    rejected: Counter[tuple[str, str]] = Counter()
    for kind, key, value, result in decoded(generated):
        if isinstance(result, Rejection):
            rejected[(kind, str(result.reason))] += 1
            continue
        accepted[result.type] += 1
        doc = json.loads(value)
        spec = EVENT_TYPES[doc["type"]]
        assert str(spec.topic) == kind
        first, *rest = spec.key.split("|")
        assert key == str(doc.get(first) or doc[rest[0] if rest else first]).encode()
        missing = [name for name, f in spec.fields.items() if f.required and name not in doc]
        assert not missing, (doc, missing)
        assert set(doc) <= {"schema", "type", "event_id", "event_time", *spec.fields}
    assert accepted == generated.truth.events
    assert rejected == generated.truth.rejected
    assert {reason for _, reason in rejected} == {
        "malformed_json",
        "missing_field",
        "unknown_type",
        "out_of_range",
        "wrong_topic",
    }


def test_event_ids_are_unique_and_times_ordered_inside_the_span() -> None:
    generated = traffic(0.02)
    ids: list[str] = []
    for messages in generated.messages.values():
        times = []
        for _, value in messages:
            try:
                doc = json.loads(value)
            except json.JSONDecodeError:
                continue
            ids.append(doc["event_id"])
            times.append(ms(doc["event_time"]))
        assert times == sorted(times)
        assert all(START <= t < END for t in times)
        assert generated.last_ms >= max(times)
    assert len(ids) == len(set(ids))


def test_every_topic_kind_and_event_type_is_generated() -> None:
    events = traffic().truth.events
    assert set(events) == set(EVENT_TYPES)
    assert all(len(messages) > 0 for messages in traffic().messages.values())


def test_orders_lines_add_up_and_money_has_two_decimals() -> None:
    for _, _, value, event in decoded(traffic()):
        assert isinstance(event, Event)
        doc = json.loads(value)
        for name in ("amount", "spend"):
            if name in doc:
                assert round(doc[name], 2) == doc[name] >= 0
        if event.type == "order_paid":
            assert 1 <= len(event.items()) <= 3
            assert sum(line.amount_cents for line in event.items()) == event.number("amount")


def test_a_visitors_events_follow_the_shopping_and_order_lifecycle() -> None:
    events = sorted(
        (
            event
            for kind, _, _, event in decoded(traffic())
            if isinstance(event, Event) and kind in ("clickstream", "orders")
        ),
        key=lambda event: event.event_ms,
    )
    checked_out: set[str] = set()
    stages: dict[str, list[str]] = {}
    for event in events:
        visitor = event.text("visitor_id")
        if event.type == "page_view" and event.text("page_type") == "checkout":
            checked_out.add(visitor)
        if event.type == "order_created":
            assert visitor in checked_out
        if event.type.startswith("order_") or event.type == "review":
            stages.setdefault(event.text("order_id"), []).append(event.type)
    assert stages
    for history in stages.values():
        assert history[0] == "order_created"
        if "order_refunded" in history or "review" in history:
            assert "order_paid" in history
            assert history.index("order_paid") < min(
                history.index(t) for t in ("order_refunded", "review") if t in history
            )
        assert not ("order_paid" in history and "order_cancelled" in history)


def test_raw_labels_off_the_allow_lists_are_generated() -> None:
    raw = Counter(
        (json.loads(value).get("channel"), json.loads(value).get("campaign"))
        for _, value in traffic().messages["clickstream"]
    )
    assert any(channel == "tiktok-live" for channel, _ in raw)
    assert any(campaign == "d11-preheat" for _, campaign in raw)
    assert any(campaign == "" for _, campaign in raw)


# --- the truth on generated traffic ------------------------------------------------------


def test_minute_page_views_add_up_to_every_page_view() -> None:
    truth = traffic().truth
    views = truth.events["page_view"]
    assert total(truth, "m", "pv") == views
    for gran in ("h", "d", "w", "M"):
        assert total(truth, gran, "pv") == views
    assert sum(total(truth, "h", "pv", "channel", c) for c in DEFAULT_CHANNELS) == views
    assert len(truth.buckets("d")) == 2 and len(truth.buckets("w")) == 2


def test_additive_counters_agree_across_granularities() -> None:
    truth = traffic().truth
    for name in ("clicks", "orders_paid", "gmv_cents", "cs_responses", "spend_cents", "sessions"):
        figures = {gran: total(truth, gran, name) for gran in ("m", "h", "d", "w", "M")}
        assert len(set(figures.values())) == 1, (name, figures)
        assert figures["m"] > 0, name


def test_funnel_sets_that_must_nest() -> None:
    truth = traffic().truth
    days = truth.buckets("d")
    payers, orderers = truth.members("d", days, "payers"), truth.members("d", days, "orderers")
    assert payers and payers <= orderers  # every paid order was created in the span
    assert truth.members("d", days, "carters") <= truth.members("d", days, "uv")
    for day in days:
        assert truth.distinct("d", day, "new_member_payers") <= truth.distinct(
            "d", day, "paying_members"
        )
        assert truth.distinct("d", day, "uv") <= truth.distinct("d", day, "unique_pv")
        assert truth.distinct("d", day, "unique_pv") <= truth.counter("d", day, "pv")
    assert truth.distinct_over("d", days, "uv") == len(truth.members("d", days, "uv"))


def test_sessions_close_with_the_flush() -> None:
    generated = generate_shop(9, START, SPAN_S, 300)
    truth = generated.truth
    sessions = total(truth, "d", "sessions")
    visitors = len(truth.members("d", truth.buckets("d"), "uv"))
    assert sessions > visitors  # some visitors came back after more than 30 minutes
    assert 0 < total(truth, "d", "sessions_closed") < sessions
    flush = flush_events(9, generated.last_ms + 31 * 60_000, 4, truth)
    assert [(p, k) for p, k, _ in flush] == [(p, f"flush-{p}".encode()) for p in range(4)]
    assert all(
        isinstance(decode(v, LIMITS, generated.last_ms + 31 * 60_000), Event) for *_, v in flush
    )
    closed = total(truth, "d", "sessions_closed")
    assert closed == sessions  # the four flush sessions stay open
    assert total(truth, "d", "sessions") == sessions + 4
    assert total(truth, "d", "exits") == closed
    views = truth.events["page_view"]
    assert total(truth, "d", "session_views") == views - 4
    assert total(truth, "d", "time_on_page_views") == views - 4 - closed
    assert sum(truth.ranking("d", d, "page_exits").total() for d in truth.buckets("d")) == closed


def test_chat_has_slow_replies_open_and_waiting_conversations() -> None:
    truth = traffic().truth
    responses = total(truth, "d", "cs_responses")
    assert 0 < total(truth, "d", "cs_responses_within_sla") < responses
    bins = sum(
        total(truth, "d", "cs_response_bin", "le", le)
        for le in (*(str(b) for b in RESPONSE_BINS_S), "+Inf")
    )
    assert bins == responses
    conversations = total(truth, "d", "cs_conversations")
    closed = total(truth, "d", "cs_conversations_closed")
    assert 0 < closed < conversations
    waiting = truth.waiting_at_end()
    assert waiting and all(START <= since < END for since in waiting.values())
    open_by_agent = truth.agent_open_at_end()
    assert len(open_by_agent) == 8 and all(n >= 0 for n in open_by_agent.values())
    assert sum(open_by_agent.values()) <= conversations - closed
    assert total(truth, "d", "cs_first_responses") <= conversations
    assert total(truth, "d", "complaints_timed") <= total(truth, "d", "complaints_resolved")


def test_repeat_buyers_match_a_count_from_the_messages() -> None:
    generated = traffic()
    per_buyer: Counter[str] = Counter()
    for _, value in generated.messages["orders"]:
        doc = json.loads(value)
        if doc["type"] == "order_paid":
            per_buyer[doc.get("member_id") or doc["visitor_id"]] += 1
    expected = Counter(min(n, 6) for n in per_buyer.values())
    assert generated.truth.repeat_lifetime() == {n: expected[n] for n in range(1, 7)}
    assert sum(expected[n] for n in range(2, 7)) > 0


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), visitors=st.integers(1, 60), minutes=st.integers(1, 90))
def test_invariants_hold_for_any_seed(seed: int, visitors: int, minutes: int) -> None:
    generated = generate_shop(seed, START, minutes * 60, visitors)
    truth = generated.truth
    assert total(truth, "m", "pv") == truth.events["page_view"]
    assert sum(len(m) for m in generated.messages.values()) == sum(truth.events.values())
    flush_events(seed, generated.last_ms + 31 * 60_000, 2, truth)
    assert total(truth, "d", "sessions_closed") == total(truth, "d", "sessions") - 2
    assert total(truth, "d", "bounces") <= total(truth, "d", "sessions_closed")


# --- the truth's logic on scenarios worked out by hand -------------------------------------

T0 = ms("2026-11-11T00:00:00.000+08:00")  # a Wednesday
IDS = iter(range(1_000_000))


def doc(kind: str, at: int, **fields: Any) -> dict[str, Any]:
    moment = datetime.fromtimestamp(at / 1000, ZONE).isoformat(timespec="milliseconds")
    return {"type": kind, "event_id": f"h{next(IDS)}", "event_time": moment, **fields}


def view(truth: ShopTruth, visitor: str, at: int, page: str, page_type: str, **extra: Any) -> None:
    fields = {"channel": "search", "device": "app", **extra}
    truth.record(doc("page_view", at, visitor_id=visitor, page=page, page_type=page_type, **fields))


def test_hand_built_sessions_bounces_exits_and_time_on_page() -> None:
    truth = ShopTruth()
    b1 = T0 + 5_000
    b2 = b1 + 1_800_001  # 00:30:05.001, one ms past the timeout: a new session
    b3 = b2 + 1_800_000  # 01:00:05.001, exactly the timeout: the same session
    # Recorded out of order on purpose: the truth orders each visitor's views itself.
    view(truth, "B", b3, "/c/shoes", "category", category="shoes")
    view(truth, "A", T0, "/", "home")
    view(truth, "A", T0 + 10_000, "/p/1", "product", product_id="p1", category="shoes")
    view(truth, "A", T0 + 70_000, "/cart", "cart")
    view(truth, "B", b1, "/p/2", "product", channel="ads", campaign="double11", product_id="p2")
    view(truth, "B", b2, "/", "home", campaign="")
    view(truth, "C", T0 + 20_000, "/search?q=tv", "search", channel="tiktok-live", device="tablet")
    day, hour0, hour1 = T0 // 1000, T0 // 1000, T0 // 1000 + 3600

    assert truth.counter("d", day, "pv") == 7
    assert truth.counter("d", day, "pv", "channel", "other") == 1
    assert truth.counter("d", day, "pv", "device", "other") == 1
    assert truth.counter("d", day, "pv", "campaign", "double11") == 1
    assert truth.counter("d", day, "sessions") == 4  # A, B twice, C
    assert truth.counter("d", day, "sessions", "channel", "search") == 2
    assert truth.counter("d", day, "sessions", "channel", "ads") == 1
    assert truth.counter("d", day, "ad_landings", "campaign", "double11") == 1
    assert truth.counter("m", T0 // 1000, "sessions") == 3  # A, B and C start at 00:00
    # Before the flush only B's first visit is over (it is not B's last).
    assert truth.counter("d", day, "sessions_closed") == 1
    assert truth.counter("d", day, "bounces") == 1
    assert truth.counter("d", day, "exits", "page_type", "product") == 1
    assert truth.ranking("d", day, "page_exits") == Counter({"/p/2": 1})
    # Time on page needs no closing: A's home 10 s and product 60 s; B's home 30 min.
    assert truth.counter("d", day, "time_on_page_ms", "page_type", "home") == 10_000 + 1_800_000
    assert truth.counter("d", day, "time_on_page_views", "page_type", "home") == 2
    assert truth.counter("d", day, "time_on_page_ms", "page_type", "product") == 60_000
    assert truth.counter("h", hour1, "time_on_page_ms") == 0  # B's home view was at 00:30
    assert truth.ranking("d", day, "product_views") == Counter({"p1": 1, "p2": 1})
    assert truth.ranking("d", day, "category_views") == Counter({"shoes": 1})  # product pages
    assert truth.ranking("m", T0 // 1000, "page_views") == Counter()

    flush = flush_events(1, b3 + 31 * 60_000, 2, truth)
    assert len(flush) == 2
    assert truth.counter("d", day, "pv") == 9
    assert truth.counter("d", day, "sessions") == 6
    assert truth.counter("d", day, "sessions_closed") == 4
    assert truth.counter("d", day, "session_views") == 3 + 1 + 2 + 1
    assert truth.counter("d", day, "session_duration_ms") == 70_000 + 1_800_000
    assert truth.counter("d", day, "session_duration_ms", "channel", "other") == 0
    assert truth.counter("d", day, "bounces") == 2  # B's first visit and C
    assert truth.counter("d", day, "bounces", "channel", "other") == 1
    assert truth.counter("h", hour0, "sessions_closed") == 4  # all started before 01:00
    assert truth.counter("h", hour0, "exits") == 3
    assert truth.counter("h", hour1, "exits", "page_type", "category") == 1  # B left at 01:00
    assert truth.ranking("h", hour1, "page_exits") == Counter({"/c/shoes": 1})
    assert truth.ranking("d", day, "page_exits") == Counter(
        {"/cart": 1, "/p/2": 1, "/c/shoes": 1, "/search?q=tv": 1}
    )
    assert truth.distinct("d", day, "uv") == 5  # A, B, C and the two flush visitors
    assert truth.distinct("d", day, "unique_pv") == 9


def test_hand_built_conversations_and_complaints() -> None:
    truth = ShopTruth()
    s = 1_000

    def chat(kind: str, at: int, conversation: str, **fields: Any) -> None:
        truth.record(doc(kind, T0 + at, conversation_id=conversation, **fields))

    chat("customer_message", 0, "c1")
    chat("bot_message", 2 * s, "c1")
    chat("customer_message", 5 * s, "c1")  # still the same wait
    chat("agent_message", 40 * s, "c1", agent_id="ann")  # 40 s: first response, bin 60
    chat("complaint_opened", 45 * s, "c1", complaint_id="k1")
    chat("customer_message", 50 * s, "c1")
    chat("agent_message", 55 * s, "c1", agent_id="bob")  # 5 s, handed over to bob
    chat("agent_message", 58 * s, "c1", agent_id="bob")  # nobody waits: no response
    chat("complaint_resolved", 105 * s, "c1", complaint_id="k1", satisfied=True)
    chat("complaint_resolved", 106 * s, "c1", complaint_id="k0", satisfied=False)
    chat("customer_message", 110 * s, "c1")  # still waiting at the end
    chat("agent_message", 0, "c2", agent_id="ann")  # the shop writes first
    chat("customer_message", 20 * s, "c2")
    chat("agent_message", 31 * s, "c2", agent_id="ann")  # 11 s: response and first response
    chat("customer_message", 40 * s, "c2")
    chat("conversation_closed", 50 * s, "c2")  # closing ends the wait and frees ann
    chat("conversation_closed", 60 * s, "c2")  # already closed: not counted again
    day = T0 // 1000

    def figure(name: str, dim: str = "", value: str = "") -> int:
        return truth.counter("d", day, name, dim, value)

    # c1, c2 and the stray close of c2: the first event of any chat type of an id that is
    # not open counts a conversation (the generator never sends such a close).
    assert figure("cs_conversations") == 3
    assert figure("cs_conversations_closed") == 1
    assert figure("cs_customer_messages") == 6
    assert figure("cs_bot_messages") == 1
    assert figure("cs_responses") == 3
    assert figure("cs_response_ms") == 40_000 + 5_000 + 11_000
    assert figure("cs_responses_within_sla") == 2
    assert figure("cs_response_bin", "le", "60") == 1
    assert figure("cs_response_bin", "le", "5") == 1
    assert figure("cs_response_bin", "le", "15") == 1
    assert figure("cs_first_responses") == 2
    assert figure("cs_first_response_ms") == 40_000 + 11_000
    assert figure("cs_first_responses_within_sla") == 1
    assert figure("cs_first_response_bin", "le", "60") == 1
    assert figure("complaints_opened") == 1
    assert figure("complaints_resolved") == 2
    assert figure("complaints_satisfied") == 1
    assert figure("complaints_timed") == 1
    assert figure("complaint_handling_ms") == 60_000
    assert truth.waiting_at_end() == {"c1": T0 + 110 * s}
    assert truth.agent_open_at_end() == {"ann": 0, "bob": 1}


def test_hand_built_orders_repeat_purchase_and_new_members() -> None:
    truth = ShopTruth()

    def paid(at: int, visitor: str, member: str | None, registered: str | None) -> None:
        fields: dict[str, Any] = {
            "visitor_id": visitor,
            "order_id": f"o{next(IDS)}",
            "channel": "weibo",
            "campaign": "double11",
            "amount": 10.3,
            "items": [
                {"product_id": "p1", "brand": "b1", "amount": 7.1, "quantity": 2},
                {"product_id": "p2", "category": "tv", "amount": 3.2},
            ],
        }
        if member:
            fields["member_id"] = member
        if registered:
            fields["member_registered_at"] = registered
        truth.record(doc("order_paid", at, **fields))

    for n in range(7):
        paid(T0 + n * 60_000, "v1", "m1", "2026-10-31T23:59:59.999+08:00")  # 7 orders: "6+"
    paid(T0, "v2", None, None)  # a guest: the buyer is the visitor
    paid(T0 + 120_000, "v3", "m3", "2026-11-11T00:01:00+08:00")
    paid(T0 + 180_000, "v4", "m3", "2026-11-11T00:01:00+08:00")  # m3 on a second device
    paid(T0 - 1, "v5", "m5", "2026-11-09T08:00:00+08:00")  # Tuesday, joined on Monday
    paid(T0 + 5, "v6", "m6", "2026-11-11T00:00:00.000+08:00")  # joined at the day's start
    paid(T0, "v7", "m7", "2026-11-10T23:59:59.999+08:00")  # joined the day before
    wed, tue = T0 // 1000, T0 // 1000 - 86_400
    week, month = truth.bucket_of("w", T0), truth.bucket_of("M", T0)
    assert week == ms("2026-11-09T00:00:00+08:00") // 1000
    assert truth.repeat_distribution("d", wed) == {1: 3, 2: 1, 3: 0, 4: 0, 5: 0, 6: 1}
    assert truth.repeat_distribution("d", tue) == {1: 1, 2: 0, 3: 0, 4: 0, 5: 0, 6: 0}
    assert truth.repeat_distribution("w", week) == {1: 4, 2: 1, 3: 0, 4: 0, 5: 0, 6: 1}
    assert truth.repeat_lifetime() == {1: 4, 2: 1, 3: 0, 4: 0, 5: 0, 6: 1}
    assert truth.members("d", [wed], "new_member_payers") == {"m3", "m6"}
    assert truth.distinct("d", tue, "new_member_payers") == 0
    assert truth.members("w", [week], "new_member_payers") == {"m3", "m5", "m6", "m7"}
    assert truth.distinct("M", month, "new_member_payers") == 4
    assert truth.distinct("m", T0 // 1000, "new_member_payers") == 0  # only d, w and M
    assert truth.distinct("w", week, "payers") == 7
    assert truth.distinct("d", wed, "payers", "channel", "other") == 6
    assert truth.distinct("d", wed, "paying_members") == 4
    assert truth.counter("d", wed, "gmv_cents", "campaign", "double11") == 12 * 1030
    assert truth.counter("d", wed, "units_sold") == 12 * 3
    assert truth.ranking("d", wed, "product_sales") == Counter({"p1": 12 * 710, "p2": 12 * 320})
    assert truth.ranking("d", wed, "brand_sales") == Counter({"b1": 12 * 710})
    assert truth.ranking("d", wed, "category_sales") == Counter({"tv": 12 * 320})


def test_buckets_are_cut_in_the_business_time_zone() -> None:
    truth = ShopTruth("Asia/Kathmandu")  # +05:45: hours start at :15 UTC
    view(truth, "A", ms("2026-11-01T00:10:00+05:45"), "/", "home")  # a Sunday
    assert truth.buckets("h") == [ms("2026-11-01T00:00:00+05:45") // 1000]
    assert truth.buckets("d") == [ms("2026-11-01T00:00:00+05:45") // 1000]
    assert truth.buckets("w") == [ms("2026-10-26T00:00:00+05:45") // 1000]
    assert truth.buckets("M") == [ms("2026-11-01T00:00:00+05:45") // 1000]
    assert truth.buckets("m") == [ms("2026-11-01T00:10:00+05:45") // 1000]


def test_registrations_logins_carts_impressions_and_spend() -> None:
    truth = ShopTruth()
    visit = {"visitor_id": "v", "channel": "email", "device": "pc"}
    truth.record(doc("registration", T0, member_id="m", **visit))
    truth.record(doc("login", T0 + 1, member_id="m", **visit))
    truth.record(doc("login", T0 + 2, member_id="n", **visit))
    truth.record(doc("add_to_cart", T0 + 3, product_id="p", **visit))
    truth.record(doc("add_to_cart", T0 + 4, product_id="p", quantity=3, **visit))
    truth.record(doc("ad_impression", T0 + 5, **{**visit, "channel": "ads"}, campaign="double11"))
    truth.record(doc("ad_impression", T0 + 6, **{**visit, "channel": "ads"}, count=7))
    truth.record(
        doc("cost_report", T0 + 7, channel="ads", campaign="618", spend=0.29, impressions=100)
    )
    truth.record(doc("cost_report", T0 + 8, channel="tiktok-live", spend=12.34))
    truth.record(doc("click", T0 + 9, page="/", page_type="landing", brand="b", **visit))
    day = T0 // 1000
    assert truth.counter("d", day, "registrations", "channel", "email") == 1
    assert truth.counter("d", day, "logins") == 2
    assert truth.distinct("d", day, "active_members") == 2
    assert truth.counter("d", day, "cart_adds") == 4
    assert truth.distinct("d", day, "carters", "channel", "email") == 1
    assert truth.counter("d", day, "ad_impressions") == 1 + 7 + 100
    assert truth.counter("d", day, "ad_impressions", "campaign", "double11") == 1
    assert truth.counter("d", day, "ad_impressions", "campaign", "618") == 100
    assert truth.counter("d", day, "spend_cents") == 29 + 1234
    assert truth.counter("d", day, "spend_cents", "channel", "other") == 1234
    assert truth.counter("d", day, "clicks", "page_type", "other") == 1
    assert truth.ranking("d", day, "brand_clicks") == Counter({"b": 1})
    assert truth.distinct("d", day, "uv") == 0  # no page view


@pytest.mark.parametrize("gran", ["m", "h", "d", "w", "M"])
def test_bucket_of_matches_buckets(gran: str) -> None:
    truth = ShopTruth()
    view(truth, "A", T0 + 90_000, "/", "home")
    assert truth.buckets(gran) == [truth.bucket_of(gran, T0 + 90_000)]


def test_disordered_delivery_keeps_every_message_and_bounds_the_lateness() -> None:
    traffic = generate_shop(seed=3, start_ms=T0, duration_s=3600, visitors=300, bad_ratio=0.02)
    messages = traffic.messages["clickstream"] + traffic.messages["orders"]
    messages.sort(key=lambda m: shop_time(m[1]) or 0)
    delay = 10 * 60_000
    out = disorder(messages, 7, 0.3, delay, very_late_share=0.1, very_late_delay_ms=3 * delay)
    assert sorted(out) == sorted(messages)
    assert out != messages
    newest = 0
    moved = very_late = 0
    for _, value in out:
        ms = shop_time(value)
        if ms is None:
            continue
        kind = json.loads(value)["type"]
        if ms < newest - delay:
            assert kind in STATELESS_TYPES, (kind, newest - ms)
            very_late += 1
        moved += ms < newest
        newest = max(newest, ms)
    assert moved > len(out) // 10
    assert very_late > 0
    assert disorder(messages, 7, 0.3, delay) == disorder(messages, 7, 0.3, delay)


def shop_time(value: bytes) -> int | None:
    try:
        return ShopTruth._time_ms(json.loads(value)["event_time"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _docs(generated: ShopTraffic, kind: str) -> list[dict[str, Any]]:
    return [json.loads(value) for _, value in generated.messages[kind]]


def _event_ms(doc: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(doc["event_time"]).timestamp() * 1000)


def test_paying_buyers_place_a_realistic_number_of_paid_orders() -> None:
    # A promotion night: most paying buyers pay one order, a few split a basket.
    paid = [d for d in _docs(traffic(), "orders") if d["type"] == "order_paid"]
    per_buyer = Counter(d.get("member_id") or d["visitor_id"] for d in paid)
    assert len(per_buyer) > 20
    assert 1.0 < len(paid) / len(per_buyer) <= 1.5
    assert Counter(per_buyer.values())[1] > 0.7 * len(per_buyer)


def test_live_rounds_keep_the_customers_waiting_at_a_steady_level() -> None:
    # Twelve 5-minute rounds as `shop_cli --live` plays them: chats sized below the agents'
    # capacity, visits and chats going on past their round, unanswered customers giving up.
    from loadtest.shop_cli import CHATS_PER_MINUTE, OVERRUN_S

    round_ms = 300_000
    chat: list[dict[str, Any]] = []
    for n in range(12):
        generated = generate_shop(
            100 + n,
            START + n * round_ms,
            round_ms / 1000,
            200,
            conversations=round(CHATS_PER_MINUTE * 5),
            overrun_s=OVERRUN_S,
        )
        chat += _docs(generated, "chat")
    chat.sort(key=_event_ms)

    def open_at(t_ms: int) -> int:
        """Conversations begun before ``t_ms`` and not closed by then (agents hold them)."""
        begun = {d["conversation_id"] for d in chat if _event_ms(d) < t_ms}
        closed = {
            d["conversation_id"]
            for d in chat
            if d["type"] == "conversation_closed" and _event_ms(d) < t_ms
        }
        return len(begun - closed)

    def waiting_at(t_ms: int) -> tuple[int, float]:
        """Customers whose last message before ``t_ms`` is unanswered, and the longest wait."""
        last: dict[str, tuple[str, int]] = {}
        since: dict[str, int] = {}
        for doc in chat:
            ms = _event_ms(doc)
            if ms >= t_ms:
                break
            cid, kind = doc["conversation_id"], doc["type"]
            if kind == "customer_message" and last.get(cid, ("", 0))[0] != "customer_message":
                since[cid] = ms
            last[cid] = (kind, ms)
        waits = [t_ms - since[c] for c, (kind, _) in last.items() if kind == "customer_message"]
        return len(waits), max(waits, default=0) / 1000

    levels = [waiting_at(START + n * round_ms) for n in range(3, 13)]
    counts = [n for n, _ in levels]
    # steady: no growth round after round, and no wait as old as the demo
    assert max(counts) <= 3 * max(1, min(counts)) and max(counts) < 40, levels
    assert max(longest for _, longest in levels) < 15 * 60, levels
    # agents hold few conversations and no more over time: 8 agents x 5 = 40
    held = [open_at(START + n * round_ms) for n in range(3, 13)]
    assert max(held) < 40 and held[-1] <= 1.5 * held[2], held
