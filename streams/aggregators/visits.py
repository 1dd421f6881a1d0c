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

from bisect import insort
from collections.abc import Callable

from streams.aggregators.context import BatchContext
from streams.aggregators.delta import Dims, coarse
from streams.aggregators.figures import Figures, emit_difference
from streams.aggregators.memory import VISIT_TABLE, View, encode_views
from streams.events import Event
from streams.timebuckets import Bucket

NEVER = 1 << 62


def forget_before(ctx: BatchContext, watermark_ms: int) -> int:
    """Event time before which an ended visit or conversation can be forgotten.

    No event within the allowed lateness can reach it any more.
    """
    return watermark_ms - ctx.config.allowed_lateness_ms


def visit_figures(ctx: BatchContext, views: list[View], watermark_ms: int | None) -> Figures:
    """Everything the visits of ``views`` (in time order) contribute at ``watermark_ms``.

    The definition; :func:`settle_visits` emits the same difference through
    :func:`_figures_from`, which skips what two lists share (a test compares them).
    """
    return _figures_from(ctx, views, 0, 0, watermark_ms)


def _figures_from(
    ctx: BatchContext, views: list[View], start: int, pairs_from: int, watermark_ms: int | None
) -> Figures:
    """The figures of the visits beginning at index ``start`` (a visit's first view).

    Time on page only for the views at index ``pairs_from`` or later.
    """
    figures = Figures()
    timeout = ctx.config.session_timeout_ms
    wm = -NEVER if watermark_ms is None else watermark_ms
    retained = ctx.retained
    count = figures.count
    first = start
    n = len(views)
    while first < n:
        end = first + 1
        while end < n and views[end].ms - views[end - 1].ms <= timeout:
            end += 1
        entry, last = views[first], views[end - 1]
        entry_buckets = _visit_start(count, retained, entry)
        _time_on_page(count, retained, views, max(first, pairs_from), end)
        by_channel = (("channel", entry.channel),)
        if wm - last.ms > timeout:
            count(entry_buckets, "sessions_closed", 1, by_channel)
            count(entry_buckets, "session_views", end - first, by_channel)
            count(entry_buckets, "session_duration_ms", last.ms - entry.ms, by_channel)
            if end - first == 1:
                count(entry_buckets, "bounces", 1, by_channel)
            exit_buckets = retained(last.ms)
            count(exit_buckets, "exits", 1, (("page_type", last.page_type),))
            figures.rank(coarse(exit_buckets), "page_exits", last.page)
        first = end
    return figures


Count = Callable[[tuple[Bucket, ...], str, int, Dims], None]
"""Where figures go: :meth:`Figures.count` or, on the direct path, :meth:`BatchDelta.count_dims`."""


def _visit_start(
    count: Count, retained: Callable[[int], tuple[Bucket, ...]], entry: View
) -> tuple[Bucket, ...]:
    """A visit's start (per channel and device; an ad landing); returns its buckets."""
    entry_buckets = retained(entry.ms)
    count(entry_buckets, "sessions", 1, (("channel", entry.channel), ("device", entry.device)))
    if entry.channel == "ads":
        count(entry_buckets, "ad_landings", 1, (("campaign", entry.campaign),))
    return entry_buckets


def _time_on_page(
    count: Count,
    retained: Callable[[int], tuple[Bucket, ...]],
    views: list[View],
    first: int,
    end: int,
) -> None:
    """Time on page of the views at ``first`` .. ``end - 2`` (to the next view), per page type."""
    for k in range(first, end - 1):
        here = views[k]
        by_type = (("page_type", here.page_type),)
        on_page = retained(here.ms)
        count(on_page, "time_on_page_ms", views[k + 1].ms - here.ms, by_type)
        count(on_page, "time_on_page_views", 1, by_type)


def _changed_region(before: list[View], after: list[View], timeout: int) -> tuple[int, int]:
    """Where the figures of two view lists of one visitor can differ.

    Returns (start of the visit holding the last view the lists share at the same index,
    index of the first view they do not share). Before that visit both lists hold the
    same visits, each followed by a shared view more than the timeout later, so closed
    under any watermark either list has seen; time on page differs only from the last
    shared view on.
    """
    shared = len(before)
    if before is not after and not (
        shared and shared <= len(after) and after[shared - 1] is before[-1]
    ):  # not the usual case (views appended in order): compare
        shared = 0
        limit = min(len(before), len(after))
        while shared < limit and before[shared] == after[shared]:
            shared += 1
    if shared == 0:
        return 0, 0
    start = shared - 1
    while start > 0 and after[start].ms - after[start - 1].ms <= timeout:
        start -= 1
    return start, shared - 1


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
    touched = ctx.visits_touched
    if visitor not in touched:
        touched[visitor] = len(views)
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
        if visitor not in ctx.visits_before:  # the views before the batch, kept aside
            ctx.visits_before[visitor] = views[: touched[visitor]]
        insort(views, view)


def settle_visits(ctx: BatchContext, wm_before: int | None, wm_after: int) -> None:
    """Settle the visitors this batch or the watermark changed.

    Emits the change in the figures of every visitor whose views changed in this batch
    or whose visits the watermark closed; forgets the visits no late view can reach.
    """
    memory = ctx.memory
    due = memory.visits_due
    touched = ctx.visits_touched
    keys = set(touched)
    keys.update(due.pop_due(wm_after))
    timeout = ctx.config.session_timeout_ms
    horizon = forget_before(ctx, wm_after)
    delta = ctx.delta
    for visitor in keys:
        views = memory.visits.get(visitor)
        if views is None:
            continue
        length_before = touched.get(visitor)
        appended = (
            length_before is not None
            and visitor not in ctx.visits_before
            and _appended_to_open_visit(ctx, views, length_before, wm_before, wm_after)
        )
        if not appended:
            if length_before is None:
                before_views = views
            else:
                before_views = ctx.visits_before.get(visitor) or views[:length_before]
            start, pairs_from = _changed_region(before_views, views, timeout)
            before = _figures_from(ctx, before_views, start, pairs_from, wm_before)
            after = _figures_from(ctx, views, start, pairs_from, wm_after)
            if emit_difference(delta, before, after):
                delta.retractions += 1
        # Forget leading visits that no view within the lateness can reach any more.
        keep = 0
        if views[0].ms + timeout < horizon:
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
            memory.visits_encoded.pop(visitor, None)
            delta.delete_state(VISIT_TABLE, visitor)
            continue
        if keep or length_before is not None:
            encoded = memory.visits_encoded
            if appended and not keep and length_before and visitor in encoded:
                # Views appended in order: the stored text gains only their encoding.
                text = encoded[visitor][:-1] + "," + encode_views(views[length_before:])[1:]
            else:
                text = encode_views(views)
            encoded[visitor] = text
            delta.put_state(VISIT_TABLE, visitor, text)
        due.schedule(visitor, _next_due(views, timeout, ctx.config.allowed_lateness_ms, wm_after))


def _appended_to_open_visit(
    ctx: BatchContext, views: list[View], length_before: int, wm_before: int | None, wm: int
) -> bool:
    """Emit the figures of views appended in time order to one visit still open, if so.

    The hot path (a visitor's views arriving in order, the visit going on): only the
    new time on page and, for a new visitor, the visit's start change; nothing emitted
    before is withdrawn. Returns False, emitting nothing, in every other case.
    """
    timeout = ctx.config.session_timeout_ms
    if wm - views[-1].ms > timeout:
        return False  # the visit closes: the general path
    first = max(length_before - 1, 0)
    if length_before and (wm_before is None or wm_before - views[first].ms > timeout):
        return False  # it was closed before
    for k in range(first + 1, len(views)):
        if views[k].ms - views[k - 1].ms > timeout:
            return False  # a new visit starts
    count = ctx.delta.count_dims
    if length_before == 0:
        _visit_start(count, ctx.retained, views[0])
    _time_on_page(count, ctx.retained, views, first, len(views))
    return True


def _next_due(views: list[View], timeout: int, lateness: int, wm: int) -> int:
    """The watermark past which the visitor's figures or state next change by themselves.

    That is when the last visit closes, or when the first one can be forgotten.
    """
    closes = views[-1].ms + timeout
    if closes >= wm and views[0].ms + timeout + lateness >= closes:
        return closes  # the usual case: the visit closes before anything can be forgotten
    first_end = 1
    while first_end < len(views) and views[first_end].ms - views[first_end - 1].ms <= timeout:
        first_end += 1
    forget = views[first_end - 1].ms + timeout + lateness
    return min(forget, closes) if closes >= wm else forget
