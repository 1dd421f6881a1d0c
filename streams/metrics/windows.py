"""Which stored buckets make up each exported window at a moment.

Live (:func:`windows_at`): ``minute``, ``hour``, ``day``, ``week``, ``month`` are the
current buckets ("so far"); ``last_minute``, ``yesterday``, ``last_week``, ``last_month``
the complete previous ones (``last_minute`` gives per-minute charts one complete value
per minute, where the running ``minute`` is a sawtooth); ``5m`` and ``30m`` the current
minute and the 4 or 29 before it.

As of a past moment (:func:`windows_as_of`, for backfill): a period "so far" is made
of its finer buckets up to the moment, so it counts only the events up to the end of
the moment's minute, as the live exporter showed it then; beyond the minute retention,
up to the end of the moment's hour; beyond the hour retention, the whole day.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

from streams.common.timebuckets import Bucket, BucketClock, Granularity
from streams.store.reader import Window

ROLLING = {"5m": 5, "30m": 30}
"""Rolling windows and their minutes; only UV among the distinct counts."""
CURRENT = {
    "minute": Granularity.MINUTE,
    "hour": Granularity.HOUR,
    "day": Granularity.DAY,
    "week": Granularity.WEEK,
    "month": Granularity.MONTH,
}
PREVIOUS = {
    "last_minute": Granularity.MINUTE,
    "yesterday": Granularity.DAY,
    "last_week": Granularity.WEEK,
    "last_month": Granularity.MONTH,
}
RANKED_WINDOWS = ("hour", "day", "week", "month", "yesterday")
DEPTH_WINDOWS = ("hour", "day", "yesterday")
"""The windows with visitors by page views (the live 跳失率): hours and days."""
PERIOD_WINDOWS = ("day", "week", "month", "yesterday", "last_week", "last_month")
GROWTH = {"day": "yesterday", "week": "last_week", "month": "last_month"}
"""A period so far and the complete period before it (growth, scorecard)."""
PERIOD_GRANULARITY = {
    "day": Granularity.DAY,
    "week": Granularity.WEEK,
    "month": Granularity.MONTH,
    "yesterday": Granularity.DAY,
    "last_week": Granularity.WEEK,
    "last_month": Granularity.MONTH,
}
HISTORY_WINDOWS = ("minute", "last_minute", "hour", "day")
"""The windows backfill writes for each step."""


CLOSED_MARGIN_S = 120
"""How long after its end a period is cached: longer than a batch takes from its wall
clock to its apply, plus the clock skew between the workers and the exporter."""


def windows_at(clock: BucketClock, now_s: float, future_s: float | None = None) -> list[Window]:
    """Every live window, as buckets, at wall-clock time ``now_s``.

    The previous periods are :attr:`~Window.cacheable` from :data:`CLOSED_MARGIN_S`
    after their end, and every bucket or distinct part ended by then is
    :attr:`~Window.sealed`. With ``future_s`` (the largest event time ahead of a worker's
    clock that the decoder accepts, seconds), the days of this week and month that start
    later than ``now_s + future_s + CLOSED_MARGIN_S`` are left out of their distinct
    parts: no event can be in them yet.
    """
    sealed_by = now_s - CLOSED_MARGIN_S

    def window(name: str, buckets: tuple[Bucket, ...], **kw: bool) -> Window:
        parts = tuple(
            b for b in clock.distinct_parts(buckets[0]) if len(buckets) == 1 and b != buckets[0]
        )
        if future_s is not None:
            parts = tuple(b for b in parts if b.start <= now_s + future_s + CLOSED_MARGIN_S)
        sealed = frozenset(b for b in buckets + parts if clock.end_of(b) <= sealed_by)
        return Window(name, buckets, parts, sealed=sealed, **kw)

    out = [window(name, (clock.bucket_at(g, now_s),)) for name, g in CURRENT.items()]
    for name, g in PREVIOUS.items():
        b = clock.previous(clock.bucket_at(g, now_s))
        out.append(window(name, (b,), cacheable=clock.end_of(b) <= sealed_by))
    minute = clock.start_of(Granularity.MINUTE, now_s)
    out += [
        window(
            name,
            tuple(Bucket(Granularity.MINUTE, minute - 60 * k) for k in range(n)),
            uv_only=True,
        )
        for name, n in ROLLING.items()
    ]
    return out


class Precision(Enum):
    """How far past a step's moment its "so far" windows count events."""

    MINUTE = "to the end of the moment's minute"
    HOUR = "to the end of the moment's hour (minute buckets no longer kept)"
    DAY = "the whole day (hour buckets no longer kept)"


def windows_as_of(
    clock: BucketClock, moment_s: float, kept: Callable[[Bucket], bool]
) -> tuple[list[Window], Precision]:
    """The history windows (:data:`HISTORY_WINDOWS`) as they stood at ``moment_s``.

    ``kept(bucket)`` says whether the store still holds a bucket (its retention). The
    hour and the day so far are summed from the minutes and hours before the moment
    while those are kept, so an event after the moment's minute never counts.
    """
    minute = clock.bucket_at(Granularity.MINUTE, moment_s)
    hour = clock.bucket_at(Granularity.HOUR, moment_s)
    day = clock.bucket_at(Granularity.DAY, moment_s)
    hours = _parts(clock, Granularity.HOUR, day.start, hour.start)
    if kept(Bucket(Granularity.MINUTE, hour.start)):
        hour_so_far = Window(
            "hour", _parts(clock, Granularity.MINUTE, hour.start, minute.start + 1), partial=True
        )
        precision = Precision.MINUTE
    else:
        hour_so_far = Window("hour", (hour,), clock.distinct_parts(hour))
        precision = Precision.HOUR
    if not hours or kept(hours[0]):
        day_so_far = Window("day", hours + hour_so_far.buckets, partial=True)
    else:
        day_so_far = Window("day", (day,), clock.distinct_parts(day))
        precision = Precision.DAY
    last_minute = clock.previous(minute)
    return [
        Window("minute", (minute,)),
        Window("last_minute", (last_minute,)),
        hour_so_far,
        day_so_far,
    ], precision


def _parts(
    clock: BucketClock, granularity: Granularity, start: int, before: int
) -> tuple[Bucket, ...]:
    """The buckets of ``granularity`` starting in [start, before)."""
    out = []
    bucket = clock.bucket_at(granularity, start)
    while bucket.start < before:
        out.append(bucket)
        bucket = Bucket(granularity, clock.end_of(bucket))
    return tuple(out)
