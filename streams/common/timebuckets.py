"""Event-time buckets: minute, hour, business day, ISO week and month.

A bucket is identified by the UTC epoch second of its start, so ids are
unambiguous across daylight-saving changes and sort as numbers. Hours, days,
weeks (Monday start) and months are cut in the business time zone (an hour in
Asia/Kathmandu starts at :15 UTC) and cached per minute, because every event
needs all of them.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

from streams.common.errors import KpiError


class Granularity(enum.StrEnum):
    """Bucket sizes stored in Redis."""

    MINUTE = "m"
    HOUR = "h"
    DAY = "d"
    WEEK = "w"
    MONTH = "M"


GRANULARITIES = tuple(Granularity)

DERIVED_DISTINCT = frozenset({Granularity.WEEK, Granularity.MONTH})
"""Granularities whose distinct sets (HyperLogLogs) are not stored but read as the union of
their days' (:meth:`BucketClock.distinct_parts`), for the sets that are such a union
(:data:`streams.aggregators.delta.DERIVED_SETS`): a week's or a month's visitors are the
union of its days' visitors, exactly (a HyperLogLog union is register-wise), and each page
view then writes three HyperLogLogs per dimension value instead of five."""


class Bucket(NamedTuple):
    """One event-time bucket: its size and the epoch second it starts at.

    A named tuple, not a dataclass: buckets are dictionary keys on the hot path,
    and tuple hashing and comparison run in C.
    """

    granularity: Granularity
    start: int


class BucketClock:
    """Maps event times to buckets in one business time zone."""

    def __init__(self, timezone: str) -> None:
        self.zone = ZoneInfo(timezone)
        self._starts = lru_cache(maxsize=65_536)(self._starts_uncached)
        self.end_of = lru_cache(maxsize=65_536)(self._end_of)  # type: ignore[method-assign]

    def buckets(self, event_ms: int) -> tuple[Bucket, ...]:
        """The minute, hour, day, week and month buckets holding ``event_ms``."""
        return self._starts(event_ms // 60_000)

    def start_of(self, granularity: Granularity, epoch_s: float) -> int:
        """Start (epoch second) of the bucket of ``granularity`` holding ``epoch_s``."""
        return self._starts(int(epoch_s // 60))[GRANULARITIES.index(granularity)].start

    def bucket_at(self, granularity: Granularity, epoch_s: float) -> Bucket:
        """The bucket of ``granularity`` holding ``epoch_s``."""
        return Bucket(granularity, self.start_of(granularity, epoch_s))

    def previous(self, bucket: Bucket) -> Bucket:
        """The bucket of the same size just before ``bucket``."""
        return self.bucket_at(bucket.granularity, bucket.start - 1)

    def distinct_parts(self, bucket: Bucket) -> tuple[Bucket, ...]:
        """The buckets whose distinct sets make up ``bucket``'s.

        Its days for a week or a month (:data:`DERIVED_DISTINCT`), else the bucket itself.
        """
        if bucket.granularity not in DERIVED_DISTINCT:
            return (bucket,)
        end = self.end_of(bucket)
        day = self.bucket_at(Granularity.DAY, bucket.start)
        days = []
        while day.start < end:
            days.append(day)
            day = Bucket(Granularity.DAY, self.end_of(day))
        return tuple(days)

    def end_of(self, bucket: Bucket) -> int:
        """First epoch second after ``bucket`` (days may be 23 or 25 hours long); cached."""
        return self._end_of(bucket)

    def _end_of(self, bucket: Bucket) -> int:
        g = bucket.granularity
        if g is Granularity.MINUTE:
            return bucket.start + 60
        if g is Granularity.HOUR:
            return bucket.start + 3600
        local = datetime.fromtimestamp(bucket.start, self.zone)
        if g is Granularity.DAY:
            later = local + timedelta(days=1, hours=3)
        elif g is Granularity.WEEK:
            later = local + timedelta(days=7, hours=3)
        else:
            later = (local.replace(day=28) + timedelta(days=4)).replace(day=1, hour=3)
        midnight = later.replace(hour=0, minute=0, second=0, microsecond=0)
        return int(midnight.timestamp())

    def _starts_uncached(self, epoch_minute: int) -> tuple[Bucket, ...]:
        minute_start = epoch_minute * 60
        local = datetime.fromtimestamp(minute_start, UTC).astimezone(self.zone)
        hour_start = minute_start - local.minute * 60
        # Re-resolved: in the hour a fall-back repeats after midnight, replace() would keep
        # the second occurrence's offset and start the day an hour late.
        day_local = _midnight(local)
        week_local = day_local - timedelta(days=day_local.weekday())
        month_local = day_local.replace(day=1)
        return (
            Bucket(Granularity.MINUTE, minute_start),
            Bucket(Granularity.HOUR, hour_start),
            Bucket(Granularity.DAY, int(day_local.timestamp())),
            Bucket(Granularity.WEEK, int(_midnight(week_local).timestamp())),
            Bucket(Granularity.MONTH, int(_midnight(month_local).timestamp())),
        )


def _midnight(local: datetime) -> datetime:
    """Re-resolve a local midnight's UTC offset (a week or month may start across a DST change)."""
    return datetime(local.year, local.month, local.day, tzinfo=local.tzinfo)


def instant(text: str, flag: str) -> float:
    """An ISO time with its UTC offset, as epoch seconds (``flag`` names it in errors).

    Raises :class:`KpiError` for text that is not an ISO time or has no offset (a time
    without one would be read in the machine's zone, not the shop's).
    """
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise KpiError(f"{flag} {text!r} is not an ISO time") from exc
    if moment.tzinfo is None:
        raise KpiError(f"{flag} needs a UTC offset, e.g. 2026-11-11T00:00:00+08:00")
    return moment.timestamp()
