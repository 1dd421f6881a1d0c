"""An order's created, paid, cancelled and refunded events count once per order id.

Hand-computed answers: a copy with a new event id (a retried webhook, a reloaded
confirmation page) counts nowhere, goes to the dead letters and is counted there.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from streams.aggregators import KpiAggregator, ShardMemory
from streams.common.keys import Shard
from streams.common.settings import Settings
from streams.common.timebuckets import Bucket, Granularity
from streams.ingest.events import Event, OrderLine, RejectReason, TopicKind
from streams.store.memory_sink import MemorySink
from streams.worker.pipeline import BatchProcessor, DeadLetterList, Record
from streams.worker.runtime import decode_limits
from tests.unit.test_event_time import (
    DAY,
    MIN,
    NOW_MS,
    TODAY,
    Store,
    aggregator,
    at,
    event,
    one_by_one,
    run,
)

MONTH = Bucket(Granularity.MONTH, 1_793_462_400)  # November 2026 in Shanghai
P9 = OrderLine("p-9", "shoes", "acme", 1, 29_900)
P3 = OrderLine("p-3", "socks", "acme", 1, 10_000)


def order(kind: str, ms: int, order_id: str, buyer: str, **attrs: object) -> Event:
    return event(kind, ms, visitor_id=buyer, order_id=order_id, channel="search", **attrs)


def resent(original: Event, ms: int | None = None) -> Event:
    """The same business event again, with a new event id (and maybe a later time)."""
    return event(original.type, original.event_ms if ms is None else ms, **original.attrs)


def repeat_rate(store: Store, bucket: Bucket) -> float:
    """Buyers with two or more paid orders in ``bucket`` / buyers (KPI_SPEC 复购率)."""
    paid: dict[str, int] = {}
    for (periods, buyer), n in store.repeat.items():
        if bucket in periods:
            paid[buyer] = paid.get(buyer, 0) + n
    return sum(1 for n in paid.values() if n >= 2) / len(paid)


def test_a_resent_payment_counts_once() -> None:
    # o1 (299 yuan, one unit of p-9) created 01:00, paid 01:01 and the same payment again
    # at 01:02 with a new event id; o2 (100 yuan, another buyer) created 01:10, paid 01:11.
    paid = order("order_paid", at(1, 1), "o1", "b1", amount=29_900, items=(P9,))
    events = [
        order("order_created", at(1), "o1", "b1", amount=29_900, items=(P9,)),
        paid,
        resent(paid, at(1, 2)),
        order("order_created", at(1, 10), "o2", "b2", amount=10_000, items=(P3,)),
        order("order_paid", at(1, 11), "o2", "b2", amount=10_000, items=(P3,)),
    ]
    for batches in ([events], one_by_one(events)):
        store = run(aggregator(), batches)
        c = store.counters
        assert c[(TODAY, "orders_paid")] == 2
        assert c[(TODAY, "gmv_cents")] == 39_900
        assert c[(TODAY, "gmv_cents")] / c[(TODAY, "orders_paid")] == 19_950  # AOV per order
        assert c[(TODAY, "units_sold")] == 2
        assert repeat_rate(store, TODAY) == 0
        assert repeat_rate(store, MONTH) == 0
        assert store.ranked[(TODAY, "product_sales", "p-9")] == 29_900


def test_the_refusal_is_counted_with_its_reason_and_position() -> None:
    paid = order("order_paid", at(1, 1), "o1", "b1", amount=29_900)
    delta = aggregator().aggregate([paid, resent(paid)], ShardMemory(), NOW_MS)
    assert delta.rejected[RejectReason.DUPLICATE_ORDER_EVENT] == 1
    assert [(position, r.reason) for position, r in delta.refused] == [
        (1, RejectReason.DUPLICATE_ORDER_EVENT)
    ]
    assert "o1" in delta.refused[0][1].detail
    assert delta.accepted == 1


@pytest.mark.parametrize(
    ("kind", "attrs", "counter", "value"),
    [
        ("order_created", {"amount": 500}, "orders_created", 1),
        ("order_paid", {"amount": 500}, "gmv_cents", 500),
        ("order_cancelled", {}, "orders_cancelled", 1),
        ("order_refunded", {"amount": 700}, "refund_cents", 700),
    ],
)
def test_each_kind_of_order_event_sent_again_counts_once(
    kind: str, attrs: dict[str, object], counter: str, value: int
) -> None:
    first = order(kind, at(2), "o7", "b7", **attrs)
    # Sent again at once, an hour later, and delivered before the first copy.
    copies = [resent(first), resent(first, at(3))]
    for events in ([first, *copies], [copies[0], first, copies[1]]):
        for batches in ([events], one_by_one(events)):
            assert run(aggregator(), batches).counters[(TODAY, counter)] == value


def test_different_kinds_of_one_order_each_count() -> None:
    events = [
        order("order_created", at(1), "o1", "b1", amount=500),
        order("order_paid", at(1, 1), "o1", "b1", amount=500),
        order("order_refunded", at(5), "o1", "b1", amount=500),
        order("order_cancelled", at(1, 30), "o2", "b1"),
    ]
    c = run(aggregator(), [events]).counters
    assert [c[(TODAY, n)] for n in ("orders_created", "orders_paid", "orders_refunded")] == [1] * 3
    assert c[(TODAY, "orders_cancelled")] == 1


def test_a_second_different_payment_of_an_order_is_refused() -> None:
    # An order is paid once: a second payment with another amount is not added to GMV.
    events = [
        order("order_paid", at(1), "o1", "b1", amount=29_900),
        order("order_paid", at(1, 5), "o1", "b1", amount=1_000),
    ]
    store = run(aggregator(), [events])
    assert store.counters[(TODAY, "gmv_cents")] == 29_900


def test_order_ids_survive_a_restart_and_are_forgotten_after_the_horizon() -> None:
    agg = aggregator(order_dedupe_ms=2 * DAY * 1000)
    paid = order("order_paid", at(1), "o1", "b1", amount=500)
    moves_on = event("order_created", at(1) + 3 * DAY * 1000, visitor_id="b2", order_id="o9")
    store = run(agg, [[paid], [resent(paid, at(2))]], restart_after=0)
    assert store.counters[(TODAY, "orders_paid")] == 1
    assert "o1" in store.tables["order"]
    # Three days later (event time) o1 is beyond the two-day horizon: forgotten, so a copy
    # then would count again (documented), and its state is gone.
    store = run(agg, [[paid], [moves_on]], restart_after=0)
    assert "o1" not in store.tables["order"]
    assert store.tables["order"].keys() == {"o9"}
    store = run(agg, [[paid], [moves_on], [resent(paid)]])
    assert store.counters[(TODAY, "orders_paid")] == 2


def test_the_copy_goes_to_the_dead_letters_through_the_processor() -> None:
    shard = Shard("orders", 0)
    first = {
        "type": "order_paid",
        "event_id": "pay-1",
        "event_time": NOW_MS - 10 * MIN,
        "visitor_id": "b1",
        "order_id": "o1",
        "channel": "search",
        "amount": 299,
    }
    copy = {**first, "event_id": "pay-1-retry"}
    records = [Record(i, json.dumps(r).encode()) for i, r in enumerate((first, copy))]
    agg: KpiAggregator = aggregator()
    dead = DeadLetterList()
    sink = MemorySink()
    processor = BatchProcessor(
        decode_limits(Settings()),
        agg,
        sink,
        dead,
        {"orders": TopicKind.ORDERS},
        clock_ms=lambda: NOW_MS,
    )
    outcome = asyncio.run(processor.process(shard, records))
    assert outcome.rejected == 1
    assert [(offset, r.reason) for _, offset, r, _ in dead.items] == [
        (1, RejectReason.DUPLICATE_ORDER_EVENT)
    ]
    assert sink.shards[shard].ops["rejected:duplicate_order_event"] == 1
