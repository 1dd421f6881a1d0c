"""Visits and conversations depend on the events alone, not on arrival order or batches.

Hand-computed answers for small out-of-order inputs, and a property test: the same
events in any order within the allowed lateness, cut into any batches, with a
restart anywhere, give every figure that one sorted batch gives.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from streams.aggregators import AggregatorConfig, BatchDelta, KpiAggregator, ShardMemory
from streams.aggregators.context import BatchContext
from streams.aggregators.figures import Figures, emit_difference
from streams.aggregators.memory import View
from streams.aggregators.visits import visit_figures
from streams.common.keys import HOLDING_ZSET, WAITING_ZSET
from streams.common.timebuckets import Bucket, BucketClock, Granularity
from streams.ingest.events import Event, OrderLine, Rejection

K = TypeVar("K")
DAY = 86_400
H = 3_600_000
MIN = 60_000
S = 1000
# 2026-11-11 00:00 in Shanghai (a pure test: no service judges this date).
DAY_START_MS = 1_794_326_400_000
TODAY = Bucket(Granularity.DAY, DAY_START_MS // 1000)
YESTERDAY = Bucket(Granularity.DAY, DAY_START_MS // 1000 - DAY)
# Longer than the aggregator tests' retention: every bucket of a test stays retained.
RETENTION = {
    Granularity.MINUTE: 40 * DAY,
    Granularity.HOUR: 40 * DAY,
    Granularity.DAY: 400 * DAY,
    Granularity.WEEK: 400 * DAY,
    Granularity.MONTH: 800 * DAY,
}
NOW_MS = DAY_START_MS + 3 * DAY * 1000


def at(hours: float, minutes: float = 0, seconds: float = 0) -> int:
    """Epoch ms of a time today (business time zone)."""
    return DAY_START_MS + int(hours * H + minutes * MIN + seconds * S)


def aggregator(**config: int) -> KpiAggregator:
    return KpiAggregator(BucketClock("Asia/Shanghai"), AggregatorConfig(RETENTION, **config))


_ids = iter(range(1 << 30))


def event(kind: str, ms: int, **attrs: object) -> Event:
    return Event(kind, f"e{next(_ids)}", ms, attrs)


def view(ms: int, visitor: str, page: str = "/", page_type: str = "home") -> Event:
    return event(
        "page_view", ms, visitor_id=visitor, page=page, page_type=page_type, channel="search"
    )


def chat(kind: str, ms: int, conversation: str, agent: str = "") -> Event:
    attrs: dict[str, object] = {"conversation_id": conversation}
    if agent:
        attrs["agent_id"] = agent
    return event(kind, ms, **attrs)


@dataclass
class Store:
    """What the applies of a run add up to: an in-memory reading of the deltas."""

    counters: Counter[tuple[Bucket, str]] = field(default_factory=Counter)
    distinct: defaultdict[tuple[Bucket, str], set[str]] = field(
        default_factory=lambda: defaultdict(set)
    )
    ranked: Counter[tuple[Bucket, str, str]] = field(default_factory=Counter)
    repeat: Counter[tuple[tuple[Bucket, ...], str]] = field(default_factory=Counter)
    tables: defaultdict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    zsets: dict[tuple[str, str], int] = field(default_factory=dict)
    tallies: Counter[tuple[str, str]] = field(default_factory=Counter)
    watermark_ms: int | None = None
    retractions: int = 0
    views: Counter[tuple[Bucket, str]] = field(default_factory=Counter)
    """Page views per (hour or day, visitor), as the sink's per-visitor hashes sum them."""
    dropped: set[Bucket] = field(default_factory=set)

    def add(self, delta: BatchDelta) -> None:
        for periods, views in delta.view_depth.items():
            for bucket in periods:
                assert bucket not in self.dropped, f"a view in {bucket} after it was dropped"
                for visitor, n in views.items():
                    self.views[(bucket, visitor)] += n
        self.dropped.update(delta.depth_closed)
        self.counters.update(delta.counters)
        for key, members in delta.distinct.items():
            self.distinct[key] |= members
        for (bucket, name), scores in delta.ranked.items():
            for member, n in scores.items():
                self.ranked[(bucket, name, member)] += n
        self.repeat.update(delta.repeat_buyers)
        for (table, key), value in delta.state_put.items():
            self.tables[table][key] = value
        for table, key in delta.state_del:
            self.tables[table].pop(key, None)
        self.zsets.update(delta.zset_put)
        for key in delta.zset_del:
            self.zsets.pop(key, None)
        self.tallies.update(delta.tallies)
        self.watermark_ms = delta.watermark_ms
        self.retractions += delta.retractions

    def figures(self) -> dict[str, object]:
        """Every KPI input, with the zero entries that cancelled out dropped."""
        return {
            "counters": nonzero(self.counters),
            "distinct": dict(self.distinct),
            "ranked": nonzero(self.ranked),
            "repeat": nonzero(self.repeat),
            "waiting": dict(self.zsets),
            "agents": nonzero(self.tallies),
            "visitors_by_views": by_views(self.views),
        }

    def reload(self) -> ShardMemory:
        """The memory a restarted worker would load."""
        return ShardMemory.from_tables(self.watermark_ms, self.tables)


def by_views(views: Mapping[tuple[Bucket, str], int]) -> Counter[tuple[Bucket, int]]:
    """Visitors per (hour or day, 1 or 2 = two or more page views): the live 跳失率's parts."""
    return Counter((bucket, min(n, 2)) for (bucket, _), n in views.items() if n)


def nonzero(counts: Mapping[K, int]) -> dict[K, int]:
    """The entries that did not cancel out (negative ones kept: an over-retraction shows)."""
    return {k: v for k, v in counts.items() if v}


def run(
    agg: KpiAggregator,
    batches: Sequence[Sequence[Event | Rejection]],
    restart_after: int | None = None,
) -> Store:
    store = Store()
    memory = ShardMemory()
    for index, batch in enumerate(batches):
        store.add(agg.aggregate(batch, memory, NOW_MS))
        if restart_after == index:
            memory = store.reload()
    return store


def one_by_one(events: Sequence[Event]) -> list[list[Event]]:
    return [[e] for e in events]


# --- the small inputs, answers by hand -------------------------------------------


def test_a_late_only_view_joins_a_visit_of_its_own() -> None:
    # B views / at 03:00 and a product at 03:02; A's only view, stamped 01:00, arrives
    # two hours behind; C views / at 03:40. A's and B's visits are closed; A bounced.
    events = [
        view(at(3), "B"),
        view(at(3, 2), "B", "/p", "product"),
        view(at(1), "A"),
        view(at(3, 40), "C"),
    ]
    for batches in ([events], one_by_one(events)):
        c = run(aggregator(), batches).counters
        assert c[(TODAY, "sessions")] == 3
        assert c[(TODAY, "sessions_closed")] == 2
        assert c[(TODAY, "bounces")] == 1
        assert c[(TODAY, "bounces")] / c[(TODAY, "sessions_closed")] == 0.5
        assert c[(TODAY, "exits")] == 2
        assert c[(TODAY, "session_duration_ms")] == 120 * S


def test_a_late_view_extends_a_visit_already_closed_and_reported() -> None:
    # A views / at 01:00, B at 01:31 (which closes A's one-view visit: a bounce is
    # reported), then A's second view stamped 01:05 arrives, then C at 02:30.
    # A's visit is 01:00-01:05 with two views: the bounce is withdrawn.
    events = [
        view(at(1), "A"),
        view(at(1, 31), "B"),
        view(at(1, 5), "A", "/2"),
        view(at(2, 30), "C"),
    ]
    for batches in ([events], one_by_one(events)):
        store = run(aggregator(), batches)
        c = store.counters
        assert c[(TODAY, "sessions")] == 3
        assert c[(TODAY, "sessions_closed")] == 2
        assert c[(TODAY, "bounces")] == 1  # B
        assert c[(TODAY, "session_duration_ms")] == 300 * S
        assert c[(TODAY, "session_views")] == 3
        assert c[(TODAY, "time_on_page_ms")] == 300 * S
    assert run(aggregator(), one_by_one(events)).retractions == 1


def test_a_conversation_silent_for_longer_than_the_timeout_starts_anew() -> None:
    # X: customer yesterday 01:00:00, bot 01:00:03, 25 h of silence (timeout 24 h),
    # customer today 02:00:00, agent 02:00:09. Y: customer today 01:30:00, agent 01:30:20.
    events = [
        chat("customer_message", at(-23), "X"),
        chat("bot_message", at(-23, 0, 3), "X"),
        chat("customer_message", at(2), "X"),
        chat("agent_message", at(2, 0, 9), "X", "ann"),
        chat("customer_message", at(1, 30), "Y"),
        chat("agent_message", at(1, 30, 20), "Y", "bob"),
    ]
    for batches in ([events], one_by_one(events), [events[:2], events[2:]]):
        store = run(aggregator(), batches)
        c = store.counters
        assert c[(TODAY, "cs_conversations")] == 2
        assert c[(YESTERDAY, "cs_conversations")] == 1
        assert (c[(TODAY, "cs_responses")], c[(TODAY, "cs_response_ms")]) == (2, 29 * S)
        assert (c[(TODAY, "cs_first_responses")], c[(TODAY, "cs_first_response_ms")]) == (
            2,
            29 * S,
        )
        assert not [entry for entry in store.zsets if entry[0] == WAITING_ZSET]  # nobody waits


def test_chat_out_of_order_answers_every_wait() -> None:
    # X: customer 01:00:00, agent 01:00:20, the reply delivered first. Y: customer
    # 01:10:00 and 01:10:10, agent 01:10:30, the 01:10:10 message delivered after the reply.
    events = [
        chat("agent_message", at(1, 0, 20), "X", "ann"),
        chat("customer_message", at(1), "X"),
        chat("customer_message", at(1, 10), "Y"),
        chat("agent_message", at(1, 10, 30), "Y", "bob"),
        chat("customer_message", at(1, 10, 10), "Y"),
    ]
    for batches in ([events], one_by_one(events)):
        store = run(aggregator(), batches)
        c = store.counters
        assert (c[(TODAY, "cs_first_responses")], c[(TODAY, "cs_first_response_ms")]) == (
            2,
            50 * S,
        )
        assert (c[(TODAY, "cs_responses")], c[(TODAY, "cs_response_ms")]) == (2, 50 * S)
        # Nobody waiting (so the longest wait is 0); two agents busy until the timeout.
        assert store.zsets == {
            (HOLDING_ZSET, "ann\x1fX"): at(1, 0, 20) + 24 * H,
            (HOLDING_ZSET, "bob\x1fY"): at(1, 10, 30) + 24 * H,
        }


def test_a_view_beyond_the_allowed_lateness_counts_but_joins_no_visit() -> None:
    events = [view(at(5), "B"), view(at(1, 59), "A")]  # 3 h 1 min behind
    store = run(aggregator(), [events])
    assert store.counters[(TODAY, "pv")] == 2
    assert store.counters[(TODAY, "sessions")] == 1
    delta = aggregator().aggregate(events, ShardMemory(), NOW_MS)
    assert delta.too_late == 1


def test_a_complaint_resolved_before_its_opening_arrives_is_timed() -> None:
    opened = event("complaint_opened", at(1), conversation_id="X", complaint_id="k")
    resolved = event(
        "complaint_resolved", at(1, 5), conversation_id="X", complaint_id="k", satisfied=True
    )
    for batches in ([[opened, resolved]], [[resolved], [opened]], [[resolved, opened]]):
        c = run(aggregator(), batches).counters
        assert (c[(TODAY, "complaints_timed")], c[(TODAY, "complaint_handling_ms")]) == (
            1,
            5 * MIN,
        )


# --- any order, any batches, a restart: the same figures ---------------------------------

# Small timeouts and lateness so that generated traffic crosses them often.
CONFIG = {
    "session_timeout_ms": 5 * MIN,
    "conversation_timeout_ms": 20 * MIN,
    "allowed_lateness_ms": 60 * MIN,
}
PAGES = [("/", "home"), ("/p/1", "product"), ("/c", "category"), ("/cart", "cart")]
CHANNELS = ["search", "ads", "direct"]


@st.composite
def traffic(draw: st.DrawFn) -> list[Event]:
    """Visitors' views, conversations with bots and agents, orders and complaints, over up
    to three hours after 22:00 (so across a midnight)."""
    start = at(22)
    span = draw(st.integers(10 * MIN, 3 * H))
    times = st.integers(start, start + span)
    out: list[Event] = []
    for v in range(draw(st.integers(1, 6))):
        visitor = f"v{v}"
        channel = draw(st.sampled_from(CHANNELS))
        for ms in draw(st.lists(times, min_size=1, max_size=8)):
            page, page_type = draw(st.sampled_from(PAGES))
            out.append(
                event(
                    "page_view",
                    ms,
                    visitor_id=visitor,
                    page=page,
                    page_type=page_type,
                    channel=channel,
                    campaign="double11" if channel == "ads" else "",
                )
            )
        if draw(st.booleans()):
            order = f"o{v}"
            paid = draw(times)
            line = OrderLine("p1", "shoes", "acme", 1, 9_900)
            common = {"visitor_id": visitor, "order_id": order, "channel": channel}
            out.append(event("order_created", paid - MIN, amount=9_900, **common))
            out.append(event("order_paid", paid, amount=9_900, items=(line,), **common))
            if draw(st.booleans()):
                out.append(event("order_refunded", paid + 10 * MIN, amount=9_900, **common))
        elif draw(st.booleans()):
            common = {"visitor_id": visitor, "order_id": f"o{v}", "channel": channel}
            out.append(event("order_created", draw(times), amount=500, **common))
            out.append(event("order_cancelled", draw(times), **common))
    kinds = ["customer_message", "customer_message", "agent_message", "bot_message"]
    for c in range(draw(st.integers(0, 4))):
        conversation = f"c{c}"
        for ms in draw(st.lists(times, min_size=1, max_size=8)):
            kind = draw(st.sampled_from([*kinds, "conversation_closed"]))
            agent = draw(st.sampled_from(["ann", "bob"])) if kind == "agent_message" else ""
            out.append(chat(kind, ms, conversation, agent))
        if draw(st.booleans()):
            opened = draw(times)
            complaint = {"conversation_id": conversation, "complaint_id": f"k{c}"}
            out.append(event("complaint_opened", opened, **complaint))
            resolved = opened + draw(st.integers(0, 30 * MIN))
            out.append(event("complaint_resolved", resolved, satisfied=True, **complaint))
    return out


@st.composite
def traffic_with_copies(draw: st.DrawFn) -> tuple[list[Event], list[Event]]:
    """Traffic, and copies of some of its order events sent again with new event ids (a
    retried payment webhook, a reloaded confirmation page)."""
    events = draw(traffic())
    business = [e for e in events if e.type.startswith("order_")]
    resent = draw(st.lists(st.sampled_from(business), max_size=4)) if business else []
    return events, [event(e.type, e.event_ms, **e.attrs) for e in resent]


def delivered(events: list[Event], seed: int, max_delay_ms: int) -> list[Event]:
    """Each event delayed by up to ``max_delay_ms``: an event arrives at most that far
    behind any event delivered before it (so within a lateness of that much)."""
    rng = random.Random(seed)
    delayed = [(e.event_ms + rng.randint(0, max_delay_ms), rng.random(), e) for e in events]
    return [e for _, _, e in sorted(delayed, key=lambda d: (d[0], d[1]))]


def cut(events: list[Event], seed: int) -> list[list[Event]]:
    rng = random.Random(seed)
    batches: list[list[Event]] = []
    i = 0
    while i < len(events):
        size = rng.choice([1, 1, 2, 3, 5, 8, 40])
        batches.append(events[i : i + size])
        i += size
    return batches


def in_time_order(events: list[Event]) -> list[list[Event]]:
    return [sorted(events, key=lambda e: e.event_ms)]


SAME_FIGURES = (
    traffic_with_copies(),
    st.integers(0, 2**32),
    st.integers(0, 2**32),
    st.integers(0, 50),
)


def same_figures(
    traffic_and_copies: tuple[list[Event], list[Event]],
    order_seed: int,
    cut_seed: int,
    restart: int,
) -> None:
    # Resent order events among them: the figures are those of one copy.
    events, copies = traffic_and_copies
    agg = aggregator(**CONFIG)
    reference = run(agg, in_time_order(events)).figures()
    shuffled = delivered(events + copies, order_seed, CONFIG["allowed_lateness_ms"])
    batches = cut(shuffled, cut_seed)
    got = run(agg, batches, restart_after=restart % len(batches)).figures()
    assert got == reference


test_any_order_any_batches_and_a_restart_give_the_same_figures = settings(
    max_examples=150, deadline=None
)(given(*SAME_FIGURES)(same_figures))


def property_fails() -> bool:
    """Whether the property above finds a difference (run with a mutant patched in).

    The same examples, without shrinking the first failure found (only whether one
    exists matters here) and without the example database (a mutant's failures must not
    be replayed on the real code).
    """
    search = settings(max_examples=150, deadline=None, phases=(Phase.generate,), database=None)(
        given(*SAME_FIGURES)(same_figures)
    )
    try:
        search()
    except AssertionError:
        return True
    return False


def test_the_property_fails_without_the_lateness_merge(monkeypatch: pytest.MonkeyPatch) -> None:
    # Mutant: a late view opens a visit of its own instead of joining the one its time
    # puts it in (views appended in arrival order, not placed by time).
    from streams.aggregators import visits

    def append(views: list[object], view: object) -> None:
        views.append(view)

    monkeypatch.setattr(visits, "insort", append)
    assert property_fails()


def test_the_property_fails_when_what_ended_is_forgotten_at_the_batch_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Mutant: a visit or conversation whose timeout has passed by the end of a batch is
    # forgotten there (as when timeouts were applied at batch ends): a late event then
    # starts a new one instead of joining it.
    from streams.aggregators import visits

    def at_batch_end(ctx: object, watermark_ms: int) -> int:
        return watermark_ms

    monkeypatch.setattr(visits, "forget_before", at_batch_end)
    assert property_fails()


def test_the_property_fails_when_resent_order_events_count_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Mutant: no business-key check (every copy of an order event counts).
    from streams.aggregators import orders

    def always(ctx: object, event: object) -> bool:
        return True

    monkeypatch.setattr(orders, "first_of_its_kind", always)
    assert property_fails()


def test_the_property_fails_when_page_views_per_visitor_are_dropped_too_early(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Mutant: an hour's or day's page views per visitor are dropped once the watermark
    # passes its end, without waiting for the allowed lateness: a late view then lands in a
    # period already dropped (the sink would count its visitor as new).
    from streams.aggregators import visits

    original = visits.drop_view_depth

    def early(ctx: BatchContext, wm_before: int | None, wm_after: int) -> None:
        lateness = ctx.config.allowed_lateness_ms
        original(ctx, None if wm_before is None else wm_before + lateness, wm_after + lateness)

    # by hand: the 10:00 hour written, passed by the watermark (11:05), then a late view in
    # it (10:55, well within the lateness): the real code still has it, the mutant not
    batches = [[view(at(10, 50), "a"), view(at(11, 5), "b")], [view(at(10, 55), "a")]]
    assert (
        by_views(run(aggregator(**CONFIG), batches).views)[
            (Bucket(Granularity.HOUR, at(10) // 1000), 2)
        ]
        == 1
    )
    monkeypatch.setattr(visits, "drop_view_depth", early)
    with pytest.raises(AssertionError, match="after it was dropped"):
        run(aggregator(**CONFIG), batches)


def test_a_resolution_waiting_for_its_opening_is_forgotten_after_a_restart_too() -> None:
    resolved = event("complaint_resolved", at(1, 5), conversation_id="X", complaint_id="k")
    for restart in (None, 0):
        store = run(aggregator(), [[resolved], [view(at(5), "v")]], restart_after=restart)
        assert store.tables["complaint"] == {}


def test_waiting_is_who_waits_at_the_end() -> None:
    events = [chat("customer_message", at(1), "X"), chat("customer_message", at(1, 1), "Y")]
    store = run(aggregator(), one_by_one(events))
    assert store.zsets == {
        (WAITING_ZSET, f"{at(1)}\x1fX"): at(1) + 24 * H,
        (WAITING_ZSET, f"{at(1, 1)}\x1fY"): at(1, 1) + 24 * H,
    }


@settings(max_examples=150, deadline=None)
@given(traffic(), st.integers(0, 2**32), st.integers(0, 2**32))
def test_what_is_stored_is_the_definition_of_the_final_views(
    events: list[Event], order_seed: int, cut_seed: int
) -> None:
    # The property above compares runs of the same code; this one compares a run with
    # the definition (visit_figures over each visitor's views in time order), so that a
    # shortcut taken by every run alike (in-order appends, the changed region) is checked.
    agg = aggregator(**CONFIG)
    store = run(agg, cut(delivered(events, order_seed, CONFIG["allowed_lateness_ms"]), cut_seed))
    ctx = BatchContext(agg.clock, agg.config, BatchDelta(), ShardMemory(), NOW_MS // 1000)
    for visitor in sorted({e.attrs["visitor_id"] for e in events if e.type == "page_view"}):
        views = sorted(
            View(
                e.event_ms,
                e.attrs["page"],
                e.attrs["page_type"],
                e.attrs["channel"],
                "",
                e.attrs["campaign"],
            )
            for e in events
            if e.type == "page_view" and e.attrs["visitor_id"] == visitor
        )
        emit_difference(ctx.delta, Figures(), visit_figures(ctx, views, store.watermark_ms))
    names = {name for _, name, _ in ctx.delta._counts}
    expected = nonzero(ctx.delta.counters)
    got = nonzero({k: v for k, v in store.counters.items() if k[1].split("|")[0] in names})
    assert got == expected
    ranked = {
        (b, n, m): s for (b, n), scores in ctx.delta.ranked.items() for m, s in scores.items()
    }
    assert nonzero({k: v for k, v in store.ranked.items() if k[1] == "page_exits"}) == nonzero(
        ranked
    )
    # The live 跳失率's parts: each visitor's page views per hour and day, counted in full.
    views: Counter[tuple[Bucket, str]] = Counter()
    for e in events:
        if e.type == "page_view":
            for bucket in agg.clock.buckets(e.event_ms):
                if bucket.granularity in (Granularity.HOUR, Granularity.DAY):
                    views[(bucket, str(e.attrs["visitor_id"]))] += 1
    assert by_views(store.views) == by_views(views)
