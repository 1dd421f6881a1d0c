"""Clickstream KPIs: PV/UV by dimension, unique PV, hot content, funnel entry, sessions.

Sessions are cut by inactivity in event time: a page view more than the
session timeout after the visitor's previous one starts a new session, and a
session whose last view is more than the timeout behind the shard's watermark
is closed. A closed session yields bounce, duration and pages per visit (in
the buckets of its start) and an exit for its last page (in the buckets of that
view). Time on page is the gap to the next view in the same session.
"""

from __future__ import annotations

from streams.aggregators.context import BatchContext
from streams.aggregators.delta import coarse, days
from streams.aggregators.memory import SESSION_TABLE, Session
from streams.events import Event
from streams.timebuckets import Bucket

UNIQUE_PV_SEPARATOR = "\x1f"


def page_view(ctx: BatchContext, event: Event, buckets: tuple[Bucket, ...]) -> None:
    """PV, UV, unique PV, hot content, funnel and the visitor's session."""
    delta = ctx.delta
    get = event.attrs.get  # the hottest handler: each field read once (absent or None: "")
    visitor, page, page_type = get("visitor_id") or "", get("page") or "", get("page_type") or ""
    channel, device, campaign = get("channel") or "", get("device") or "", get("campaign") or ""
    delta.count(
        buckets, "pv", channel=channel, page_type=page_type, device=device, campaign=campaign
    )
    delta.add_distinct(buckets, "uv", visitor, channel=channel, device=device, campaign=campaign)
    delta.add_distinct(days(buckets), "unique_pv", visitor + UNIQUE_PV_SEPARATOR + page)
    wide = coarse(buckets)
    delta.rank(wide, "page_views", page)
    if page_type == "product":
        delta.add_distinct(buckets, "product_viewers", visitor, channel=channel)
        delta.rank(wide, "product_views", event.text("product_id"))
        delta.rank(wide, "category_views", event.text("category"))
        delta.rank(wide, "brand_views", event.text("brand"))
    elif page_type == "campaign":
        delta.add_distinct(buckets, "campaign_viewers", visitor, campaign=campaign)
    _advance_session(ctx, event, buckets)


def _advance_session(ctx: BatchContext, event: Event, buckets: tuple[Bucket, ...]) -> None:
    delta, memory = ctx.delta, ctx.memory
    timeout = ctx.config.session_timeout_ms
    watermark = memory.watermark_ms or event.event_ms
    if event.event_ms < watermark - timeout:
        return  # too late to place in a session; PV and UV above still count it
    visitor = event.text("visitor_id")
    session = memory.sessions.get(visitor)
    if session is not None and event.event_ms < session.last_ms:
        session.views += 1  # out of order within the session: a view, no timing
    elif session is not None and event.event_ms - session.last_ms <= timeout:
        on_page = event.event_ms - session.last_ms
        last_buckets = ctx.retained(session.last_ms)
        delta.count(last_buckets, "time_on_page_ms", on_page, page_type=session.page_type)
        delta.count(last_buckets, "time_on_page_views", 1, page_type=session.page_type)
        session.views += 1
        session.last_ms = event.event_ms
        session.page, session.page_type = event.text("page"), event.text("page_type")
    else:
        if session is not None:
            close_session(ctx, visitor, session)
        session = Session(
            event.event_ms,
            event.event_ms,
            1,
            event.text("page"),
            event.text("page_type"),
            event.text("channel"),
            event.text("device"),
            event.text("campaign"),
        )
        memory.sessions[visitor] = session
        delta.count(buckets, "sessions", channel=session.channel, device=session.device)
        if session.channel == "ads":
            delta.count(buckets, "ad_landings", campaign=session.campaign)
    ctx.touched_sessions.add(visitor)


def close_session(ctx: BatchContext, visitor: str, session: Session) -> None:
    """Record a finished session's bounce, duration, pages and exit."""
    delta = ctx.delta
    start = ctx.retained(session.start_ms)
    channel = session.channel
    delta.count(start, "sessions_closed", channel=channel)
    delta.count(start, "session_views", session.views, channel=channel)
    delta.count(start, "session_duration_ms", session.last_ms - session.start_ms, channel=channel)
    if session.views == 1:
        delta.count(start, "bounces", channel=channel)
    last = ctx.retained(session.last_ms)
    delta.count(last, "exits", page_type=session.page_type)
    delta.rank(coarse(last), "page_exits", session.page)
    del ctx.memory.sessions[visitor]
    delta.delete_state(SESSION_TABLE, visitor)


def close_idle_sessions(ctx: BatchContext, watermark_ms: int) -> None:
    """Close every session idle for longer than the timeout, by the watermark."""
    sessions = ctx.memory.sessions
    limit = watermark_ms - ctx.config.session_timeout_ms
    for visitor in [v for v, s in sessions.items() if s.last_ms < limit]:
        close_session(ctx, visitor, sessions[visitor])


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
