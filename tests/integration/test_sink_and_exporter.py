"""The offset guard, the batch processor and the exporter against the real Redis.

Hand-built events with hand-computed answers, read back through the collector
exactly as Prometheus would scrape them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import Counter
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from streams.aggregators.delta import BatchDelta
from streams.aggregators.memory import (
    CUSTOMER,
    Message,
    encode_messages,
)
from streams.common.keys import HOLDING_ZSET, WAITING_ZSET, KeyLayout, Shard
from streams.common.settings import Settings
from streams.common.timebuckets import BucketClock, Granularity
from streams.ingest.events import RejectReason
from streams.store.sink import Applied
from streams.worker.pipeline import BatchOutcome, DeadLetterList, Record
from streams.worker.runtime import batch_processor, kpi_collector
from tests.integration.clock import Clock
from tests.integration.conftest import Stack, free_port

pytestmark = pytest.mark.integration

# Every hand-computed answer below is read at this business time of day (Shanghai): each
# test runs at the most recent one on the test clock, so where "now" falls never matters.
# Only Redis judges the tests by its own clock (expiries): see ``settings_for``.
ANCHOR = "10:03:20"
CLICKS = Shard("clickstream", 0)
CHAT = Shard("chat", 1)


def settings_for(stack: Stack) -> Settings:
    # The anchor is at most a day behind the test clock, which is at most a day behind the
    # real one that Redis judges expiries by: minute buckets are kept four days, not two.
    return Settings(
        redis_url=stack.redis_url,
        redis_prefix=f"u{uuid.uuid4().hex[:8]}",
        exit_min_views=2,
        minute_retention_seconds=4 * 86_400,
    )


class At:
    """Hand-built events placed by their age in seconds before one instant."""

    def __init__(self, now_s: float) -> None:
        self.s = now_s
        self.ms = int(now_s * 1000)

    def doc(self, kind: str, seconds_ago: float, **fields: object) -> bytes:
        event = {
            "type": kind,
            "event_id": uuid.uuid4().hex,
            "event_time": self.ms - int(seconds_ago * 1000),
        }
        return json.dumps({**event, **fields}).encode()

    def view(self, visitor: str, channel: str, seconds_ago: float, page: str = "/") -> bytes:
        return self.doc(
            "page_view",
            seconds_ago,
            visitor_id=visitor,
            page=page,
            page_type="home",
            channel=channel,
        )

    def clickstream_records(self) -> list[Record]:
        """12 records: 10 valid views (visitors a..e), 2 invalid; hand-counted below."""
        view = self.view
        raw = [
            view("a", "search", 30),
            view("b", "search", 30),
            view("a", "search", 90),
            view("c", "ads", 200),
            b"{broken",
            view("d", "weibo", 10),
            view("e", "ads", 400),
            view("a", "ads", 5),
            b'{"type": "refund"}',
            view("b", "direct", 20),
            view("c", "ads", 1000),
            view("a", "search", 2000),
        ]
        return [Record(offset, value) for offset, value in enumerate(raw)]


@pytest.fixture
def at(clock: Clock) -> At:
    """The most recent 10:03:20 in Shanghai on the test clock."""
    return At(clock.latest(ANCHOR))


def collect(settings: Settings, now_s: float) -> dict[tuple[str, str, str], float]:
    """Samples keyed by (name, window, the one other label's value)."""
    collector = kpi_collector(settings)
    collector.now_s = lambda: now_s
    registry = CollectorRegistry()
    registry.register(collector)
    out = {}
    for family in registry.collect():
        for sample in family.samples:
            labels = dict(sample.labels)
            window = labels.pop("window", "")
            labels.pop("topic", None)
            labels.pop("rank", None)
            other = next(iter(labels.values()), "")
            out[(sample.name, window, other)] = sample.value
    return out


async def run_batches(
    settings: Settings, batches: list[tuple[Shard, list[Record]]], now_ms: int
) -> DeadLetterList:
    client = aioredis.Redis.from_url(settings.redis_url)
    dead = DeadLetterList()
    try:
        processor = batch_processor(settings, client, dead)
        processor.clock_ms = lambda: now_ms
        for shard, batch in batches:
            await processor.process(shard, batch)
    finally:
        await client.aclose()
    return dead


def test_overlapping_and_repeated_batches_apply_once(stack: Stack, at: At) -> None:
    settings = settings_for(stack)
    rs = at.clickstream_records()
    # Batches overlap and repeat, as after a crash between apply and Kafka commit.
    batches = [rs[0:5], rs[3:9], rs[0:9], rs[9:12], rs]
    dead = asyncio.run(run_batches(settings, [(CLICKS, b) for b in batches], at.ms))
    got = collect(settings, at.s)
    # Day (10:03:20 CST; all events after 00:00): search a,b,a,a = 4; ads c,e,a,c = 4;
    # other (weibo) d = 1; direct b = 1.
    assert got[("shop_page_views", "day", "")] == 10
    assert got[("shop_page_views_by_channel", "day", "search")] == 4
    assert got[("shop_page_views_by_channel", "day", "ads")] == 4
    assert got[("shop_page_views_by_channel", "day", "other")] == 1
    assert got[("shop_page_views_by_channel", "day", "direct")] == 1
    assert got[("shop_unique_visitors_by_channel", "day", "ads")] == 3  # c, e, a
    assert got[("shop_unique_visitors", "day", "")] == 5
    assert got[("shop_pv_per_uv", "day", "")] == 2.0
    # Last 5 minutes = 09:59:00-10:03:59: ages 30, 30, 90, 200, 10, 5, 20 s (not 400, 1000, 2000).
    assert got[("shop_page_views", "5m", "")] == 7
    assert got[("shop_unique_visitors", "5m", "")] == 4  # a, b, c, d
    # Current minute 10:03:00-10:03:20: ages 10, 5, 20 s -> d (other), a (ads), b (direct).
    assert got[("shop_page_views_by_channel", "minute", "ads")] == 1
    assert got[("shop_events_consumed_total", "", "")] == 12
    assert got[("shop_events_rejected_total", "", "malformed_json")] == 1
    assert got[("shop_events_rejected_total", "", "unknown_type")] == 1
    assert got[("shop_exporter_redis_up", "", "")] == 1
    assert [(offset, rej.reason) for _, offset, rej, _ in dead.items] == [
        (4, RejectReason.MALFORMED_JSON),
        (8, RejectReason.UNKNOWN_TYPE),
    ]


def test_stale_expected_offset_is_refused_and_changes_nothing(stack: Stack, at: At) -> None:
    settings = settings_for(stack)

    async def scenario() -> Applied:
        client = aioredis.Redis.from_url(settings.redis_url)
        try:
            processor = batch_processor(settings, client, DeadLetterList())
            processor.clock_ms = lambda: at.ms
            await processor.process(CLICKS, at.clickstream_records()[:6])
            stale = await processor.sink.load(CLICKS)
            await processor.process(CLICKS, at.clickstream_records()[6:])
            delta = processor.aggregator.aggregate([], stale.memory, at.ms)
            delta.consumed = 99
            return await processor.sink.apply(CLICKS, stale.applied_offset, 100, delta, at.ms)
        finally:
            await client.aclose()

    assert asyncio.run(scenario()) == (False, 11, frozenset())
    assert collect(settings, at.s)[("shop_events_consumed_total", "", "")] == 12


def test_sessions_exits_and_bounce_by_hand(stack: Stack, at: At) -> None:
    settings = settings_for(stack)
    # Ages in seconds before 10:03:20 (all in today's buckets, before the current hour's start
    # only where noted). Visitor p: /a (3000) -> /b (2940) -> /a (2880): exits at /a.
    # Visitor q: /a (2990) -> /b (2930): exit at /b. Visitor r: /b (2950) only: bounce, exit /b.
    # A view by z at age 0 moves the watermark 47+ minutes past them: all three close.
    views = [
        at.view("p", "search", 3000, "/a"),
        at.view("q", "ads", 2990, "/a"),
        at.view("r", "ads", 2950, "/b"),
        at.view("p", "search", 2940, "/b"),
        at.view("q", "ads", 2930, "/b"),
        at.view("p", "search", 2880, "/a"),
        at.view("z", "direct", 0, "/z"),
    ]
    asyncio.run(
        run_batches(settings, [(CLICKS, [Record(i, v) for i, v in enumerate(views)])], at.ms)
    )
    got = collect(settings, at.s)
    assert got[("shop_sessions", "day", "")] == 4
    assert got[("shop_sessions_closed", "day", "")] == 3
    assert got[("shop_bounce_rate", "day", "")] == pytest.approx(1 / 3)
    assert got[("shop_bounce_rate_by_channel", "day", "ads")] == pytest.approx(1 / 2)
    assert got[("shop_pages_per_session", "day", "")] == pytest.approx(6 / 3)
    assert got[("shop_session_duration_avg_seconds", "day", "")] == pytest.approx(
        (120 + 60 + 0) / 3
    )
    assert got[("shop_time_on_page_avg_seconds", "day", "")] == pytest.approx((60 + 60 + 60) / 3)
    # Page /a: 3 views, 1 exit; /b: 3 views, 2 exits; /z has 1 view (< floor of 2).
    assert got[("shop_top_exit_pages_rate", "day", "/b")] == pytest.approx(2 / 3)
    assert got[("shop_top_exit_pages_rate", "day", "/a")] == pytest.approx(1 / 3)
    assert ("shop_top_exit_pages_rate", "day", "/z") not in got
    assert got[("shop_exit_rate_by_page_type", "day", "home")] == pytest.approx(3 / 7)


def test_conversations_response_times_and_waiting_by_hand(stack: Stack, at: At) -> None:
    settings = settings_for(stack)
    chat = [
        at.doc("customer_message", 300, conversation_id="c1"),
        at.doc("bot_message", 295, conversation_id="c1"),
        at.doc("agent_message", 260, conversation_id="c1", agent_id="ann"),  # first response 40 s
        at.doc("customer_message", 200, conversation_id="c1"),
        at.doc("agent_message", 190, conversation_id="c1", agent_id="ann"),  # 10 s
        at.doc("customer_message", 100, conversation_id="c2"),
        at.doc("agent_message", 95, conversation_id="c2", agent_id="ann"),  # first response 5 s
        at.doc("customer_message", 50, conversation_id="c3"),  # still waiting
        at.doc("complaint_opened", 250, conversation_id="c1", complaint_id="k"),
        at.doc("complaint_resolved", 130, conversation_id="c1", complaint_id="k", satisfied=False),
    ]
    asyncio.run(run_batches(settings, [(CHAT, [Record(i, v) for i, v in enumerate(chat)])], at.ms))
    got = collect(settings, at.s)
    assert got[("shop_cs_responses", "day", "")] == 3
    assert got[("shop_cs_response_avg_seconds", "day", "")] == pytest.approx(55 / 3)
    assert got[("shop_cs_first_response_avg_seconds", "day", "")] == pytest.approx(45 / 2)
    assert got[("shop_cs_sla_share", "day", "")] == pytest.approx(2 / 3)
    assert got[("shop_cs_first_response_seconds_bucket", "day", "5")] == 1
    assert got[("shop_cs_first_response_seconds_bucket", "day", "30")] == 1
    assert got[("shop_cs_first_response_seconds_bucket", "day", "60")] == 2
    assert got[("shop_cs_first_response_seconds_bucket", "day", "+Inf")] == 2
    assert got[("shop_cs_waiting_customers", "", "")] == 1
    assert got[("shop_cs_longest_wait_seconds", "", "")] == pytest.approx(50)
    assert got[("shop_cs_agent_concurrency_max", "", "")] == 2
    assert got[("shop_complaint_handling_avg_seconds", "day", "")] == pytest.approx(120)
    assert got[("shop_complaint_satisfaction", "day", "")] == 0
    # Undefined ratios produce no series (no NaN on a wall screen).
    assert ("shop_good_review_rate", "day", "") not in got
    assert ("shop_bounce_rate", "day", "") not in got


def test_duplicate_event_ids_are_refused_within_and_across_batches(stack: Stack, at: At) -> None:
    settings = settings_for(stack)
    a, b, c = at.view("a", "search", 30), at.view("b", "ads", 20), at.view("c", "ads", 10)
    batches = [
        [Record(0, a), Record(1, b), Record(2, a)],  # a twice in one batch
        [Record(3, b), Record(4, c)],  # b again in a later batch
    ]
    dead = asyncio.run(run_batches(settings, [(CLICKS, batch) for batch in batches], at.ms))
    got = collect(settings, at.s)
    assert got[("shop_page_views", "day", "")] == 3
    assert got[("shop_events_rejected_total", "", "duplicate_event_id")] == 2
    assert [offset for _, offset, _, _ in dead.items] == [2, 3]


async def feed_overlapped(
    settings: Settings,
    now_ms: int,
    batches: list[list[Record]],
    other_writer: list[Record] | None = None,
) -> tuple[DeadLetterList, list[BatchOutcome]]:
    """Feed ``batches`` to one shard's overlapped feeder; ``other_writer`` is applied by
    a second processor (another worker) after the first batch lands."""
    client = aioredis.Redis.from_url(settings.redis_url)
    dead = DeadLetterList()
    outcomes: list[BatchOutcome] = []
    try:
        processor = batch_processor(settings, client, dead)
        processor.clock_ms = lambda: now_ms
        feeder = processor.overlapped(CLICKS)
        for i, batch in enumerate(batches):
            outcomes += await feeder.submit(batch)
            if i == 0 and other_writer is not None:
                outcomes += await feeder.drain()
                other = batch_processor(settings, client, DeadLetterList())
                other.clock_ms = lambda: now_ms
                await other.process(CLICKS, other_writer)
        outcomes += await feeder.drain()
    finally:
        await client.aclose()
    return dead, outcomes


def test_overlapped_batches_prepared_on_a_refused_apply_are_redone(stack: Stack, at: At) -> None:
    settings = settings_for(stack)
    a, b, c, d = (at.view(v, "ads", 2400) for v in "abcd")  # 40 minutes ago
    # The second batch repeats b's event: its apply is refused by the duplicate check
    # after the third batch was already prepared on top of it (with b's session at two
    # views); both are redone from Redis. z's view, 40 minutes later, closes the four
    # sessions: each had one view, so four bounces.
    batches = [
        [Record(0, a), Record(1, b)],
        [Record(2, b), Record(3, c)],
        [Record(4, d)],
        [Record(5, at.view("z", "direct", 0))],
    ]
    dead, outcomes = asyncio.run(feed_overlapped(settings, at.ms, batches))
    got = collect(settings, at.s)
    assert got[("shop_page_views", "day", "")] == 5
    assert got[("shop_unique_visitors", "day", "")] == 5
    assert got[("shop_events_consumed_total", "", "")] == 6
    assert got[("shop_events_rejected_total", "", "duplicate_event_id")] == 1
    assert got[("shop_sessions_closed", "day", "")] == 4
    assert got[("shop_bounce_rate", "day", "")] == 1.0
    assert got[("shop_pages_per_session", "day", "")] == 1.0
    assert [offset for _, offset, _, _ in dead.items] == [2]
    assert [(o.fresh, o.rejected) for o in outcomes] == [(2, 0), (2, 1), (1, 0), (1, 0)]


def test_overlapped_feeding_skips_what_another_writer_applied(stack: Stack, at: At) -> None:
    settings = settings_for(stack)
    rs = at.clickstream_records()
    # After the first batch (0-5) lands, another processor applies 6-8; the feeder's
    # next batch (6-11) was expected on offset 5, is refused, and only 9-11 are added.
    dead, outcomes = asyncio.run(feed_overlapped(settings, at.ms, [rs[0:6], rs[6:12]], rs[6:9]))
    got = collect(settings, at.s)
    assert got[("shop_page_views", "day", "")] == 10  # as in the test above: each once
    assert got[("shop_unique_visitors", "day", "")] == 5
    assert got[("shop_events_consumed_total", "", "")] == 12
    assert [(o.fresh, o.skipped) for o in outcomes] == [(6, 0), (3, 3)]
    # Dead letters are at least once: 8 was published as the batch was prepared, before
    # the refusal showed that the other writer had it; the redo publishes nothing more.
    assert [offset for _, offset, _, _ in dead.items] == [4, 8]


def test_every_exported_family_is_documented(stack: Stack, at: At) -> None:
    settings = settings_for(stack)
    rs = at.clickstream_records()
    asyncio.run(run_batches(settings, [(CLICKS, rs)], at.ms))
    collector = kpi_collector(settings)
    collector.now_s = lambda: at.s
    registry = CollectorRegistry()
    registry.register(collector)
    text = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text()
    names = {family.name for family in registry.collect()}
    assert len(names) > 100
    missing = sorted(n for n in names if f"`{n}" not in text and f"`{n}_total" not in text)
    assert missing == []


def test_exporter_answers_with_up_zero_when_redis_is_unreachable(stack: Stack, at: At) -> None:
    settings = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    got = collect(settings, at.s)
    assert got[("shop_exporter_redis_up", "", "")] == 0
    assert not any(name == "shop_page_views" for name, _, _ in got)


def test_state_of_an_earlier_version_is_dropped_at_the_upgrade(
    stack: Stack, at: At, caplog: pytest.LogCaptureFixture
) -> None:
    """Running summaries written before the allowed lateness, with the live sets they fed,
    are dropped when a shard is loaded; this version's figures start from its own events."""
    settings = settings_for(stack)
    layout = KeyLayout(settings.redis_prefix)
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    started = at.ms - 600_000
    # As the earlier version stored them: a session open 10 minutes, a conversation
    # waiting for two days, an agent holding it.
    client.hset(
        layout.state(CLICKS, "session"),
        "old-visitor",
        json.dumps([started, started + 60_000, 2, "/", "home", "search", "pc", ""]),
    )
    waiting_since = at.ms - 2 * 86_400_000
    client.hset(
        layout.state(CHAT, "conversation"),
        "old-c",
        json.dumps([waiting_since, waiting_since, waiting_since, waiting_since, False, "bob"]),
    )
    client.zadd(layout.live_set(CHAT, "waiting"), {"old-c": waiting_since})  # no end time
    client.hset(layout.tally(CHAT, "agent_open"), "bob", 1)
    views = [at.view("a", "search", 30)]
    chat = [
        at.doc("customer_message", 50, conversation_id="c9"),
        at.doc("customer_message", 40, conversation_id="c8"),
        at.doc("agent_message", 35, conversation_id="c8", agent_id="ann"),
    ]
    batches = [
        (CLICKS, [Record(i, v) for i, v in enumerate(views)]),
        (CHAT, [Record(i, v) for i, v in enumerate(chat)]),
    ]
    with caplog.at_level(logging.WARNING, logger="streams.store.sink"):
        asyncio.run(run_batches(settings, batches, at.ms))
    assert client.exists(*layout.obsolete(CLICKS), *layout.obsolete(CHAT)) == 0
    waits = client.zrange(layout.live_set(CHAT, WAITING_ZSET), 0, -1)
    assert waits == [f"{at.ms - 50_000}\x1fc9"]
    assert client.zrange(layout.live_set(CHAT, HOLDING_ZSET), 0, -1) == ["ann\x1fc8"]
    assert sorted(client.hkeys(layout.state(CLICKS, "visit"))) == ["a"]
    assert "earlier version" in caplog.text
    got = collect(settings, at.s)
    assert got[("shop_cs_waiting_customers", "", "")] == 1
    assert got[("shop_cs_longest_wait_seconds", "", "")] == pytest.approx(50)
    assert got[("shop_cs_agents_busy", "", "")] == 1
    assert got[("shop_sessions", "day", "")] == 1

    # An old worker writing again after this version took over: its keys go again, this
    # version's live sets stay.
    client.hset(layout.state(CHAT, "conversation"), "old-c", "[]")
    more = [at.doc("customer_message", 20, conversation_id="c7")]
    asyncio.run(run_batches(settings, [(CHAT, [Record(3, more[0])])], at.ms))
    assert client.exists(layout.state(CHAT, "conversation")) == 0
    assert client.zcard(layout.live_set(CHAT, WAITING_ZSET)) == 2
    assert collect(settings, at.s)[("shop_cs_waiting_customers", "", "")] == 2


def test_live_gauges_count_only_conversations_alive_now(stack: Stack, at: At) -> None:
    """History (replayed, or a conversation whose events stopped) never shows as "now":
    a customer unanswered two days ago (the timeout is a day) and an agent's conversation
    of then count in their days, not in the live gauges."""
    settings = settings_for(stack)
    day = 86_400
    chat = [
        at.doc("customer_message", 2 * day, conversation_id="old-wait"),
        at.doc("customer_message", 2 * day - 60, conversation_id="old-held"),
        at.doc("agent_message", 2 * day - 30, conversation_id="old-held", agent_id="ann"),
        at.doc("customer_message", 50, conversation_id="now-wait"),
        at.doc("customer_message", 45, conversation_id="now-held"),
        at.doc("agent_message", 40, conversation_id="now-held", agent_id="bob"),
    ]
    records = [Record(i, v) for i, v in enumerate(chat)]
    asyncio.run(run_batches(settings, [(CHAT, records)], at.ms))
    got = collect(settings, at.s)
    assert got[("shop_cs_waiting_customers", "", "")] == 1
    assert got[("shop_cs_longest_wait_seconds", "", "")] == pytest.approx(50)
    assert got[("shop_cs_agents_busy", "", "")] == 1
    assert got[("shop_cs_agent_concurrency_max", "", "")] == 1
    assert got[("shop_cs_conversations", "day", "")] == 2  # today's; the old ones: 2 days ago
    clock = BucketClock(settings.business_timezone)
    same_week = clock.buckets(at.ms)[3] == clock.buckets(at.ms - 2 * day * 1000)[3]
    assert got[("shop_cs_conversations", "week", "")] == (4 if same_week else 2)


def test_live_entries_are_written_again_after_a_load(stack: Stack, at: At) -> None:
    """A conversation kept by an earlier event-time version, whose live sets were dropped at
    the upgrade (or lost), shows in the live gauges again from the first batch on."""
    settings = settings_for(stack)
    layout = KeyLayout(settings.redis_prefix)
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    kept = encode_messages([Message(at.ms - 30_000, CUSTOMER)])
    client.hset(layout.state(CHAT, "chat"), "w1", kept)
    client.zadd(layout.live_set(CHAT, "waiting"), {"w1": at.ms - 30_000})  # obsolete form
    other = at.doc("customer_message", 10, conversation_id="w2")
    asyncio.run(run_batches(settings, [(CHAT, [Record(0, other)])], at.ms))
    got = collect(settings, at.s)
    assert got[("shop_cs_waiting_customers", "", "")] == 2
    assert got[("shop_cs_longest_wait_seconds", "", "")] == pytest.approx(30)
    assert client.exists(layout.live_set(CHAT, "waiting")) == 0


def test_ranking_increments_add_up_both_ways_the_apply_merges_them(stack: Stack, at: At) -> None:
    """A batch with many members is summed into a ranking with ZUNIONSTORE, a small one
    with ZINCRBY: both add each increment (negative ones too) to the stored score."""
    settings = settings_for(stack)
    clock = BucketClock(settings.business_timezone)
    hour = clock.bucket_at(Granularity.HOUR, at.s)
    day = clock.bucket_at(Granularity.DAY, at.s)
    pages = [f"/p/{k}" for k in range(150)]
    batches = [
        {page: k % 7 + 1 for k, page in enumerate(pages[:100])},  # many: merged
        {page: 2 for page in pages[50:150]},  # many again, half of them known
        {"/p/0": -1, "/p/149": 5, "/p/new": 3},  # few: one ZINCRBY each
    ]
    expected: Counter[str] = Counter()
    for batch in batches:
        expected.update(batch)

    async def scenario() -> None:
        client = aioredis.Redis.from_url(settings.redis_url)
        try:
            sink = batch_processor(settings, client, DeadLetterList()).sink
            offset = None
            for k, increments in enumerate(batches):
                delta = BatchDelta()
                for page, n in increments.items():
                    delta.rank((hour, day), "page_views", page, n)
                applied = await sink.apply(CLICKS, offset, k, delta, at.ms)
                assert applied.applied
                offset = k
        finally:
            await client.aclose()

    asyncio.run(scenario())
    layout = KeyLayout(settings.redis_prefix)
    stored = redis.Redis.from_url(settings.redis_url)
    for bucket in (hour, day):
        got = stored.zrange(layout.ranking(CLICKS, bucket, "page_views"), 0, -1, withscores=True)
        assert {m.decode(): int(s) for m, s in got} == dict(expected)
        assert stored.ttl(layout.ranking(CLICKS, bucket, "page_views")) > 0
    assert stored.exists(layout.scratch(CLICKS)) == 0
