"""Visits (sessions) in event time, with allowed lateness and retraction.

A visitor's page views are kept in event-time order. A visit is a run of views
each at most the visit timeout (30 minutes, GA4's default) after the previous
one; it is closed once the shard's watermark is more than the timeout past its
last view. Every visit figure is a function of that ordered list and the
watermark (:func:`visit_figures`):

- at the visit's first view: ``sessions`` (per channel and device of that view)
  and, for the ``ads`` channel, ``ad_landings`` (per campaign);
- at each view but the last: time on page (the gap to the next view), per page type;
- once closed, at its first view: ``sessions_closed``, ``session_views``,
  ``session_duration_ms`` and ``bounces`` (one view), per entry channel; at its
  last view: ``exits`` (per page type) and the ``page_exits`` ranking.

A page view no more than the allowed lateness behind the watermark joins the
list wherever its time puts it: it extends, starts, splits nothing of, or merges
visits; the figures emitted before are withdrawn and the new ones emitted (see
:mod:`streams.aggregators.figures`). A view further behind still counts as a page
view but joins no visit (``too_late``). A visit is forgotten once no view within
the lateness can reach it: its last view plus the timeout is more than the
lateness behind the watermark. Visits therefore never depend on arrival order
or batch boundaries, only on the views within the lateness.
"""

from __future__ import annotations

import heapq
from bisect import insort

from streams.aggregators.context import BatchContext
from streams.aggregators.delta import coarse
from streams.aggregators.figures import EMPTY, Figures, emit_difference
from streams.aggregators.memory import VISIT_TABLE, View, encode_views
from streams.events import Event

NEVER = 1 << 62


def forget_before(ctx: BatchContext, watermark_ms: int) -> int:
    """Event time before which an ended visit or conversation can be forgotten.

    No event within the allowed lateness can reach it any more.
    """
    return watermark_ms - ctx.config.allowed_lateness_ms


def visit_figures(ctx: BatchContext, views: list[View], watermark_ms: int | None) -> Figures:
    """Everything the visits of ``views`` (in time order) contribute at ``watermark_ms``."""
    figures = Figures()
    if not views:
        return figures
    timeout = ctx.config.session_timeout_ms
    wm = -NEVER if watermark_ms is None else watermark_ms
    retained = ctx.retained
    first = 0
    n = len(views)
    while first < n:
        end = first + 1
        while end < n and views[end].ms - views[end - 1].ms <= timeout:
            end += 1
        entry, last = views[first], views[end - 1]
        start = retained(entry.ms)
        channel = entry.channel
        figures.count(start, "sessions", channel=channel, device=entry.device)
        if channel == "ads":
            figures.count(start, "ad_landings", campaign=entry.campaign)
        for k in range(first, end - 1):
            here, following = views[k], views[k + 1]
            on_page = retained(here.ms)
            figures.count(
                on_page, "time_on_page_ms", following.ms - here.ms, page_type=here.page_type
            )
            figures.count(on_page, "time_on_page_views", 1, page_type=here.page_type)
        if wm - last.ms > timeout:
            figures.count(start, "sessions_closed", channel=channel)
            figures.count(start, "session_views", end - first, channel=channel)
            figures.count(start, "session_duration_ms", last.ms - entry.ms, channel=channel)
            if end - first == 1:
                figures.count(start, "bounces", channel=channel)
            exit_buckets = retained(last.ms)
            figures.count(exit_buckets, "exits", page_type=last.page_type)
            figures.rank(coarse(exit_buckets), "page_exits", last.page)
        first = end
    return figures


def add_view(ctx: BatchContext, event: Event) -> None:
    """Place a page view in its visitor's visits, unless it is too late to."""
    memory = ctx.memory
    wm = memory.watermark_ms
    if wm is not None and event.event_ms < wm - ctx.config.allowed_lateness_ms:
        ctx.delta.too_late += 1
        return
    get = event.attrs.get
    visitor = get("visitor_id") or ""
    views = memory.visits.get(visitor)
    if views is None:
        views = memory.visits[visitor] = []
    if visitor not in ctx.visits_before:
        ctx.visits_before[visitor] = list(views)
    view = View(
        event.event_ms,
        get("page") or "",
        get("page_type") or "",
        get("channel") or "",
        get("device") or "",
        get("campaign") or "",
    )
    if not views or views[-1] <= view:
        views.append(view)  # the usual case: in order
    else:
        insort(views, view)


def settle_visits(ctx: BatchContext, wm_before: int | None, wm_after: int) -> None:
    """Settle the visitors this batch or the watermark changed.

    Emits the change in the figures of every visitor whose views changed in this batch
    or whose visits the watermark closed; forgets the visits no late view can reach.
    """
    memory = ctx.memory
    due = memory.visits_due
    keys = set(ctx.visits_before)
    while due and due[0][0] < wm_after:
        keys.add(heapq.heappop(due)[1])
    timeout = ctx.config.session_timeout_ms
    horizon = forget_before(ctx, wm_after)
    for visitor in sorted(keys):
        views = memory.visits.get(visitor)
        if views is None:
            continue
        before_views = ctx.visits_before.get(visitor, views)
        before = visit_figures(ctx, before_views, wm_before) if before_views else EMPTY
        after = visit_figures(ctx, views, wm_after)
        if emit_difference(ctx.delta, before, after):
            ctx.delta.retractions += 1
        # Forget leading visits that no view within the lateness can reach any more.
        keep = 0
        for k in range(1, len(views) + 1):
            if k == len(views) or views[k].ms - views[k - 1].ms > timeout:
                if views[k - 1].ms + timeout < horizon:
                    keep = k
                else:
                    break
        if keep:
            del views[:keep]
        if not views:
            del memory.visits[visitor]
            ctx.delta.delete_state(VISIT_TABLE, visitor)
            continue
        if keep or visitor in ctx.visits_before:
            ctx.delta.put_state(VISIT_TABLE, visitor, encode_views(views))
        heapq.heappush(
            due, (_next_due(views, timeout, ctx.config.allowed_lateness_ms, wm_after), visitor)
        )


def _next_due(views: list[View], timeout: int, lateness: int, wm: int) -> int:
    """The watermark past which the visitor's figures or state next change by themselves.

    That is when the last visit closes, or when the first one can be forgotten.
    """
    first_end = 1
    while first_end < len(views) and views[first_end].ms - views[first_end - 1].ms <= timeout:
        first_end += 1
    forget = views[first_end - 1].ms + timeout + lateness
    closes = views[-1].ms + timeout
    return min(forget, closes) if closes >= wm else forget
