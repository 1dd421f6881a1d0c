"""Order KPIs: orders by status, GMV at payment time, refunds, buyers, repeat purchase, reviews.

Orders carry the channel and campaign the shop attributes them to; the
funnel's order and pay steps count distinct visitors. The topic is keyed by
the buyer (member id, else visitor id), so a buyer's events share a partition
and their repeat purchase is counted on one shard.
"""

from __future__ import annotations

from streams.aggregators.context import BatchContext
from streams.aggregators.delta import coarse
from streams.common.keys import ORDER_TABLE
from streams.common.timebuckets import Bucket, Granularity
from streams.ingest.events import Event

REPEAT_PERIODS = (Granularity.DAY, Granularity.WEEK, Granularity.MONTH)
ORDER_KINDS = {"order_created": 1, "order_paid": 2, "order_cancelled": 4, "order_refunded": 8}
"""The order events that count at most once per order id, and their bit in
``ShardMemory.orders``."""


def first_of_its_kind(ctx: BatchContext, event: Event) -> bool:
    """Whether ``event`` is its order's first of its kind; if so it is remembered.

    One business event per business key, as GA4 de-duplicates purchases on the
    transaction id: a copy with a new event id (a retried payment webhook, a reloaded
    confirmation page) or a second, different payment of the same order is not, and
    counts nowhere. The first copy applied counts; copies normally carry the same
    event time, and if they do not, the figures keep the first one's. An order id is
    remembered for ``order_dedupe_ms`` of event time after its newest counted event.
    """
    bit = ORDER_KINDS[event.type]
    order = event.text("order_id")
    orders = ctx.memory.orders
    seen = orders.get(order, 0)
    if seen & bit:
        return False
    newest = max(seen >> 4, event.event_ms)
    orders[order] = value = newest << 4 | (seen & 15) | bit
    ctx.delta.put_state(ORDER_TABLE, order, str(value))
    ctx.memory.orders_due.schedule(order, newest + ctx.config.order_dedupe_ms)
    return True


def forget_orders(ctx: BatchContext, wm_after: int) -> None:
    """Forget the order ids whose newest event the watermark left the horizon behind."""
    memory = ctx.memory
    horizon = ctx.config.order_dedupe_ms
    for order in memory.orders_due.pop_due(wm_after):
        value = memory.orders.get(order)
        if value is None:
            continue
        due_at = (value >> 4) + horizon
        if due_at < wm_after:
            del memory.orders[order]
            ctx.delta.delete_state(ORDER_TABLE, order)
        else:
            memory.orders_due.schedule(order, due_at)


def order_created(ctx: BatchContext, event: Event, buckets: tuple[Bucket, ...]) -> None:
    """Created orders and the funnel's order step."""
    channel, campaign = event.text("channel"), event.text("campaign")
    ctx.delta.count(buckets, "orders_created", channel=channel, campaign=campaign)
    ctx.delta.add_distinct(buckets, "orderers", event.text("visitor_id"), channel=channel)


def order_paid(ctx: BatchContext, event: Event, buckets: tuple[Bucket, ...]) -> None:
    """Paid orders, GMV, paying buyers, new-member buyers, product sales, repeat purchase."""
    delta = ctx.delta
    channel, campaign = event.text("channel"), event.text("campaign")
    amount = event.number("amount")
    delta.count(buckets, "orders_paid", channel=channel, campaign=campaign)
    delta.count(buckets, "gmv_cents", amount, channel=channel, campaign=campaign)
    visitor = event.text("visitor_id")
    delta.add_distinct(buckets, "payers", visitor, channel=channel)
    member = event.text("member_id")
    if member:
        delta.add_distinct(buckets, "paying_members", member)
        registered = event.number("member_registered_at", -1)
        for bucket in buckets:
            if bucket.granularity in REPEAT_PERIODS and (
                bucket.start * 1000 <= registered < ctx.clock.end_of(bucket) * 1000
            ):
                delta.add_distinct((bucket,), "new_member_payers", member)
    wide = coarse(buckets)
    for line in event.items():
        delta.rank(wide, "product_sales", line.product_id, line.amount_cents)
        delta.rank(wide, "category_sales", line.category, line.amount_cents)
        delta.rank(wide, "brand_sales", line.brand, line.amount_cents)
        delta.count(buckets, "units_sold", line.quantity)
        if line.cost_cents:
            delta.count(buckets, "cogs_cents", line.cost_cents)
    periods = tuple(b for b in buckets if b.granularity in REPEAT_PERIODS)
    delta.repeat_buyers.append((periods, member or visitor))


def order_cancelled(ctx: BatchContext, event: Event, buckets: tuple[Bucket, ...]) -> None:
    """Cancelled orders."""
    ctx.delta.count(
        buckets, "orders_cancelled", channel=event.text("channel"), campaign=event.text("campaign")
    )


def order_refunded(ctx: BatchContext, event: Event, buckets: tuple[Bucket, ...]) -> None:
    """Refunded or returned orders and the refunded amount (net GMV)."""
    channel, campaign = event.text("channel"), event.text("campaign")
    ctx.delta.count(buckets, "orders_refunded", channel=channel, campaign=campaign)
    ctx.delta.count(
        buckets, "refund_cents", event.number("amount"), channel=channel, campaign=campaign
    )
    if event.flag("returned"):
        ctx.delta.count(buckets, "orders_returned")


def review(ctx: BatchContext, event: Event, buckets: tuple[Bucket, ...]) -> None:
    """Reviews; 4 and 5 stars are good reviews."""
    ctx.delta.count(buckets, "reviews")
    if event.number("rating") >= 4:
        ctx.delta.count(buckets, "good_reviews")


def stock_snapshot(ctx: BatchContext, event: Event, buckets: tuple[Bucket, ...]) -> None:
    """Snapshots of stock value: their average over a window is the average stock."""
    ctx.delta.count(buckets, "stock_value_cents", event.number("stock_value"))
    ctx.delta.count(buckets, "stock_snapshots")
    ctx.delta.add_distinct(buckets, "warehouses", event.text("warehouse_id"))


HANDLERS = {
    "stock_snapshot": stock_snapshot,
    "order_created": order_created,
    "order_paid": order_paid,
    "order_cancelled": order_cancelled,
    "order_refunded": order_refunded,
    "review": review,
}
