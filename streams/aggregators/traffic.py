"""Clickstream KPIs: PV/UV by dimension, unique PV, hot content, funnel entry, sessions.

Visits (sessions) are assembled in event time by :mod:`streams.aggregators.visits`;
page views' other figures are folded per batch as columns
(:mod:`streams.aggregators.columns`).
"""

from __future__ import annotations

from streams.aggregators.columns import UNIQUE_PV_SEPARATOR
from streams.aggregators.context import BatchContext
from streams.aggregators.delta import BatchDelta, coarse, days
from streams.aggregators.memory import View
from streams.aggregators.visits import add_view
from streams.common.timebuckets import Bucket
from streams.ingest.events import Event


def page_view(ctx: BatchContext, event: Event, buckets: tuple[Bucket, ...]) -> None:
    """PV, UV, unique PV, hot content, funnel (as columns, folded at the batch's end); visits.

    The figures are :func:`page_view_figures`'s, computed for the whole batch at once
    by :class:`~streams.aggregators.columns.PageViewColumns` (the hottest handler).
    """
    get = event.attrs.get  # each field read once (absent or None: "")
    visitor, page, page_type = get("visitor_id") or "", get("page") or "", get("page_type") or ""
    channel, device, campaign = get("channel") or "", get("device") or "", get("campaign") or ""
    if buckets:
        columns = ctx.page_views
        minute = event.event_ms // 60_000
        columns.minute.append(minute)
        columns.visitor.append(visitor)
        columns.page.append(page)
        columns.page_type.append(page_type)
        columns.channel.append(channel)
        columns.device.append(device)
        columns.campaign.append(campaign)
        if page_type == "product":
            columns.product_views.append(
                (
                    minute,
                    visitor,
                    channel,
                    event.text("product_id"),
                    event.text("category"),
                    event.text("brand"),
                )
            )
        elif page_type == "campaign":
            columns.campaign_views.append((minute, visitor, campaign))
    add_view(ctx, visitor, View(event.event_ms, page, page_type, channel, device, campaign))


def page_view_figures(delta: BatchDelta, event: Event, buckets: tuple[Bucket, ...]) -> None:
    """The definition of a page view's PV, UV, unique PV, hot content and funnel entry.

    PV per channel, page type, device and campaign; UV (distinct visitors) per channel,
    device and campaign; unique PV (distinct visitor and page) per business day; the
    page, product, category and brand rankings (hour and longer); product and campaign
    viewers. :func:`page_view` computes the same per batch, as columns.
    """
    get = event.attrs.get
    visitor, page, page_type = get("visitor_id") or "", get("page") or "", get("page_type") or ""
    channel, device, campaign = get("channel") or "", get("device") or "", get("campaign") or ""
    by_type = (("page_type", page_type),)
    by_source = (("channel", channel), ("device", device), ("campaign", campaign))
    delta.count_dims(buckets, "pv", 1, by_source[:1] + by_type + by_source[1:])
    delta.add_distinct_dims(buckets, "uv", visitor, by_source)
    delta.add_distinct(days(buckets), "unique_pv", visitor + UNIQUE_PV_SEPARATOR + page)
    wide = coarse(buckets)
    delta.rank(wide, "page_views", page)
    if page_type == "product":
        delta.add_distinct_dims(buckets, "product_viewers", visitor, (("channel", channel),))
        delta.rank(wide, "product_views", event.text("product_id"))
        delta.rank(wide, "category_views", event.text("category"))
        delta.rank(wide, "brand_views", event.text("brand"))
    elif page_type == "campaign":
        delta.add_distinct(buckets, "campaign_viewers", visitor, campaign=campaign)


def click(ctx: BatchContext, event: Event, buckets: tuple[Bucket, ...]) -> None:
    """Clicks per page type and campaign; hot content by clicks."""
    delta = ctx.delta
    delta.count(
        buckets, "clicks", page_type=event.text("page_type"), campaign=event.text("campaign")
    )
    wide = coarse(buckets)
    delta.rank(wide, "product_clicks", event.text("product_id"))
    delta.rank(wide, "category_clicks", event.text("category"))
    delta.rank(wide, "brand_clicks", event.text("brand"))


def add_to_cart(ctx: BatchContext, event: Event, buckets: tuple[Bucket, ...]) -> None:
    """Cart additions and the funnel's cart step."""
    delta = ctx.delta
    delta.count(buckets, "cart_adds", event.number("quantity", 1))
    delta.add_distinct(buckets, "carters", event.text("visitor_id"), channel=event.text("channel"))


def ad_impression(ctx: BatchContext, event: Event, buckets: tuple[Bucket, ...]) -> None:
    """Ad impressions, the denominator of the ad arrival rate."""
    ctx.delta.count(
        buckets,
        "ad_impressions",
        event.number("count", 1),
        channel=event.text("channel"),
        campaign=event.text("campaign"),
    )


def registration(ctx: BatchContext, event: Event, buckets: tuple[Bucket, ...]) -> None:
    """New members (registration conversion) and active members."""
    delta = ctx.delta
    delta.count(buckets, "registrations", channel=event.text("channel"))
    delta.add_distinct(buckets, "active_members", event.text("member_id"))


def login(ctx: BatchContext, event: Event, buckets: tuple[Bucket, ...]) -> None:
    """Logins and active members."""
    delta = ctx.delta
    delta.count(buckets, "logins")
    delta.add_distinct(buckets, "active_members", event.text("member_id"))


HANDLERS = {
    "page_view": page_view,
    "click": click,
    "add_to_cart": add_to_cart,
    "ad_impression": ad_impression,
    "registration": registration,
    "login": login,
}
