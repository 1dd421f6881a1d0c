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
from streams.aggregators.delta import DEPTH_PERIODS, Dims, coarse, depth_periods
from streams.aggregators.figures import Figures, emit_difference
from streams.aggregators.memory import View, encode_views
from streams.common.keys import VISIT_TABLE
from streams.common.timebuckets import Bucket

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
        _visit_start(count, retained, views[first])
        _time_on_page(count, retained, views, max(first, pairs_from), end)
        if wm - views[end - 1].ms > timeout:
            _visit_close(count, figures.rank, retained, views, first, end)
        first = end
    return figures


def _visit_close(
    count: Count,
    rank: Callable[[tuple[Bucket, ...], str, str, int], None],
    retained: Callable[[int], tuple[Bucket, ...]],
    views: list[View],
    first: int,
    end: int,
) -> None:
    """The figures of the closed visit ``views[first:end]``.

    At its first view: sessions closed, their views, duration and bounces (per entry
    channel); at its last view: the exit (per page type) and the page's exit ranking.
    """
    entry, last = views[first], views[end - 1]
    entry_buckets = retained(entry.ms)
    by_channel = (("channel", entry.channel),)
    count(entry_buckets, "sessions_closed", 1, by_channel)
    count(entry_buckets, "session_views", end - first, by_channel)
    if last.ms != entry.ms:  # no zero increment (a one-view visit lasts 0 ms)
        count(entry_buckets, "session_duration_ms", last.ms - entry.ms, by_channel)
    if end - first == 1:
        count(entry_buckets, "bounces", 1, by_channel)
    exit_buckets = retained(last.ms)
    count(exit_buckets, "exits", 1, (("page_type", last.page_type),))
    rank(coarse(exit_buckets), "page_exits", last.page, 1)


Count = Callable[[tuple[Bucket, ...], str, int, Dims], None]
"""Where figures go: :meth:`Figures.count`, or :meth:`BatchDelta.count_dims` for a view
placed as it arrives (:func:`add_view`)."""


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
        _page_time(count, retained, views[k], views[k + 1])


def _page_time(
    count: Count, retained: Callable[[int], tuple[Bucket, ...]], here: View, after: View
) -> None:
    """Time on page of ``here`` (the gap to the next view of its visit), per page type."""
    by_type = (("page_type", here.page_type),)
    on_page = retained(here.ms)
    count(on_page, "time_on_page_ms", after.ms - here.ms, by_type)
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


def add_view(ctx: BatchContext, visitor: str, view: View) -> None:
    """Place a visitor's page view in their visits, unless it is too late to.

    The usual case (a view in time order that extends a visit still open, or starts one)
    emits its figures here: time on page, or a visit's start. Nothing emitted before
    changes, so what the batch has emitted stays equal to :func:`visit_figures` of the
    visitor's views at the watermark the batch began with, and :func:`settle_visits`
    only adds what the watermark closes. Any other view marks the visitor for the
    general path (withdraw and re-emit) at the end of the batch.
    """
    memory = ctx.memory
    wm = memory.watermark_ms
    if wm is not None and view.ms < wm - ctx.config.allowed_lateness_ms:
        ctx.delta.too_late += 1
        return
    periods = depth_periods(ctx.retained(view.ms))
    if periods:
        ctx.delta.count_view(periods, visitor)
    views = memory.visits.get(visitor)
    if views is None:
        views = memory.visits[visitor] = []
    touched = ctx.visits_touched
    if visitor not in touched:
        touched[visitor] = len(views)
    changed = ctx.visits_before
    if visitor not in changed:
        wm_before = ctx.watermark_before
        timeout = ctx.config.session_timeout_ms
        if wm_before is None or wm_before - view.ms <= timeout:  # open at wm_before
            if not views:
                views.append(view)
                _visit_start(ctx.delta.count_dims, ctx.retained, view)
                return
            last = views[-1]
            if last <= view:
                if view.ms - last.ms <= timeout:
                    if wm_before is None or wm_before - last.ms <= timeout:
                        views.append(view)  # extends a visit still open
                        # its time on page, summed per minute at the end of the batch
                        ctx.page_views.page_times.append(
                            (last.ms // 60_000, last.page_type, view.ms - last.ms)
                        )
                        return
                elif wm_before is not None and wm_before - last.ms > timeout:
                    views.append(view)  # a new visit after one already closed
                    _visit_start(ctx.delta.count_dims, ctx.retained, view)
                    return
        changed[visitor] = list(views)  # what the batch's figures so far stand on
    if not views or views[-1] <= view:
        views.append(view)
    else:
        insort(views, view)


DEPTH_DROP_MAX = 1_000
"""Most hours (and days) one watermark move drops the page views per visitor of; older
ones expire (the sink gives them the hour retention after their end)."""


def drop_view_depth(ctx: BatchContext, wm_before: int | None, wm_after: int) -> None:
    """Drop the page views per visitor of the hours and days the watermark put out of reach.

    A bucket ending at ``end`` is out of reach once ``end <= watermark - lateness``: any
    view in it is then too late (:func:`add_view`), so its live 跳失率 cannot change.
    Dropped: those out of reach at ``wm_after`` but not at ``wm_before``; a shard's first
    batch (``wm_before`` None) drops those among the periods it wrote.
    """
    lateness = ctx.config.allowed_lateness_ms
    if wm_before is not None:
        if wm_after <= wm_before:
            return
        floor_ms = wm_before - lateness
    else:
        written = [b.start for periods in ctx.delta.view_depth for b in periods]
        if not written:
            return
        floor_ms = min(written) * 1000  # no period ending by then was written
    clock, closed = ctx.clock, ctx.delta.depth_closed
    for granularity in DEPTH_PERIODS:
        bucket = clock.previous(clock.bucket_at(granularity, (wm_after - lateness) / 1000))
        for _ in range(DEPTH_DROP_MAX):
            if clock.end_of(bucket) * 1000 <= floor_ms:
                break
            closed.append(bucket)
            bucket = clock.previous(bucket)


def settle_visits(ctx: BatchContext, wm_before: int | None, wm_after: int) -> None:
    """Settle the visitors this batch or the watermark changed.

    Emits the change in the figures of every visitor whose views left the usual case in
    this batch (see :func:`add_view`) or whose visits the watermark closed; stores the
    views of every visitor touched; forgets the visits no late view can reach.
    """
    memory = ctx.memory
    all_views = memory.visits
    due = memory.visits_due
    due_now = due.pop_due(wm_after)
    touched = ctx.visits_touched
    changed = ctx.visits_before
    timeout = ctx.config.session_timeout_ms
    lateness = ctx.config.allowed_lateness_ms
    horizon = forget_before(ctx, wm_after)
    encoded = memory.visits_encoded
    delta = ctx.delta
    state_put, state_del = delta.state_put, delta.state_del
    scheduled = due.scheduled
    for visitor, length_before in touched.items():
        views = all_views[visitor]
        before = changed.get(visitor)
        if before is not None:
            _settle(ctx, before, views, wm_before, wm_after)
        elif wm_after - views[-1].ms > timeout:
            # Only the last visit can have been open: any earlier one ended before a
            # view the watermark had passed. Its figures so far are those at wm_before.
            _settle(ctx, views, views, wm_before, wm_after)
        forgotten = _forgettable(views, timeout, horizon) if views[0].ms + timeout < horizon else 0
        if forgotten:
            del views[:forgotten]
            if not views:
                _drop(ctx, visitor)
                continue
            text = encode_views(views)
        elif before is None and length_before and (stored := encoded.get(visitor)):
            # Views appended in order: the stored text gains only their encoding.
            text = stored[:-1] + "," + encode_views(views[length_before:])[1:]
        else:
            text = encode_views(views)
        encoded[visitor] = text
        key = (VISIT_TABLE, visitor)  # delta.put_state, inlined (once per visitor and batch)
        if state_del:
            state_del.discard(key)
        state_put[key] = text
        closes = views[-1].ms + timeout
        if closes >= wm_after and views[0].ms + timeout + lateness >= closes:
            # _next_due's usual case; a visit still open is already due no later
            if (known := scheduled.get(visitor)) is None or closes < known:
                due.schedule(visitor, closes)
        else:
            due.schedule(visitor, _next_due(views, timeout, lateness, wm_after))
    for visitor in due_now:
        if visitor in touched:
            continue
        kept = all_views.get(visitor)
        if kept is None:
            continue
        views = kept
        _settle(ctx, views, views, wm_before, wm_after)
        forgotten = _forgettable(views, timeout, horizon)
        if forgotten:
            del views[:forgotten]
            if not views:
                _drop(ctx, visitor)
                continue
            encoded[visitor] = text = encode_views(views)
            delta.put_state(VISIT_TABLE, visitor, text)
        due.schedule(visitor, _next_due(views, timeout, lateness, wm_after))


def _settle(
    ctx: BatchContext, before: list[View], after: list[View], wm_before: int | None, wm: int
) -> None:
    """Emit the change from the figures of ``before`` at ``wm_before`` to ``after`` at ``wm``."""
    timeout = ctx.config.session_timeout_ms
    if before is after:
        # The same views: only the last visit can change, by closing (the usual case: no
        # figures to build twice and compare).
        last = after[-1]
        if wm - last.ms > timeout and (wm_before is None or wm_before - last.ms <= timeout):
            first = len(after) - 1
            while first > 0 and after[first].ms - after[first - 1].ms <= timeout:
                first -= 1
            _visit_close(
                ctx.delta.count_dims, ctx.delta.rank, ctx.retained, after, first, len(after)
            )
        return
    start, pairs_from = _changed_region(before, after, timeout)
    was = _figures_from(ctx, before, start, pairs_from, wm_before)
    now = _figures_from(ctx, after, start, pairs_from, wm)
    if emit_difference(ctx.delta, was, now):
        ctx.delta.retractions += 1


def _forgettable(views: list[View], timeout: int, horizon: int) -> int:
    """How many leading views make visits that no view within the lateness can reach."""
    keep = 0
    if views[0].ms + timeout < horizon:
        for k in range(1, len(views) + 1):
            if k == len(views) or views[k].ms - views[k - 1].ms > timeout:
                if views[k - 1].ms + timeout < horizon:
                    keep = k
                else:
                    break
    return keep


def _drop(ctx: BatchContext, visitor: str) -> None:
    """Forget a visitor whose visits are all beyond the lateness."""
    del ctx.memory.visits[visitor]
    ctx.memory.visits_encoded.pop(visitor, None)
    ctx.delta.delete_state(VISIT_TABLE, visitor)


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
