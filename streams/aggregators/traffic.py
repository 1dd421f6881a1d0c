"""Clickstream KPIs: PV/UV by dimension, unique PV, hot content, funnel entry, sessions.

Visits (sessions) are assembled in event time by :mod:`streams.aggregators.visits`.
"""

from __future__ import annotations

from streams.aggregators.context import BatchContext
from streams.aggregators.delta import coarse, days
from streams.aggregators.memory import View
from streams.aggregators.visits import add_view
from streams.events import Event
from streams.timebuckets import Bucket

UNIQUE_PV_SEPARATOR = "\x1f"


def page_view(ctx: BatchContext, event: Event, buckets: tuple[Bucket, ...]) -> None:
    """PV, UV, unique PV, hot content, funnel and the visitor's session."""
    delta = ctx.delta
    get = event.attrs.get  # the hottest handler: each field read once (absent or None: "")
    visitor, page, page_type = get("visitor_id") or "", get("page") or "", get("page_type") or ""
    channel, device, campaign = get("channel") or "", get("device") or "", get("campaign") or ""
    # Dimensions as tuples rather than keywords: the hottest handler (same keys, less work).
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
    add_view(ctx, visitor, View(event.event_ms, page, page_type, channel, device, campaign))


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
