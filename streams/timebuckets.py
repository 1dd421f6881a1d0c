"""Event-time buckets: minute, hour and business day in a configurable time zone.

A bucket is identified by the UTC epoch second of its start, so ids are
unambiguous across daylight-saving changes and sort as numbers. Hour and day
starts are computed in the business time zone (an hour in Asia/Kathmandu starts
at :15 UTC) and cached per minute, because every event needs all three.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo


class Granularity(enum.StrEnum):
    """Bucket sizes stored in Redis."""

    MINUTE = "m"
    HOUR = "h"
    DAY = "d"


GRANULARITIES = (Granularity.MINUTE, Granularity.HOUR, Granularity.DAY)


@dataclass(frozen=True, slots=True)
class Bucket:
    """One event-time bucket: its size and the epoch second it starts at."""

    granularity: Granularity
    start: int


class BucketClock:
    """Maps event times to buckets in one business time zone."""

    def __init__(self, timezone: str) -> None:
        self.zone = ZoneInfo(timezone)
        self._starts = lru_cache(maxsize=65_536)(self._starts_uncached)

    def buckets(self, event_ms: int) -> tuple[Bucket, Bucket, Bucket]:
        """Minute, hour and day bucket holding ``event_ms``."""
        minute, hour, day = self._starts(event_ms // 60_000)
        return (
            Bucket(Granularity.MINUTE, minute),
            Bucket(Granularity.HOUR, hour),
            Bucket(Granularity.DAY, day),
        )

    def start_of(self, granularity: Granularity, epoch_s: float) -> int:
        """Start (epoch second) of the bucket of ``granularity`` holding ``epoch_s``."""
        minute, hour, day = self._starts(int(epoch_s // 60))
        return {Granularity.MINUTE: minute, Granularity.HOUR: hour, Granularity.DAY: day}[
            granularity
        ]

    def end_of(self, bucket: Bucket) -> int:
        """First epoch second after ``bucket`` (days may be 23 or 25 hours long)."""
        if bucket.granularity is Granularity.MINUTE:
            return bucket.start + 60
        local = datetime.fromtimestamp(bucket.start, self.zone)
        if bucket.granularity is Granularity.HOUR:
            return bucket.start + 3600
        next_day = (local + timedelta(days=1, hours=3)).replace(hour=0, minute=0, second=0)
        return int(next_day.timestamp())

    def _starts_uncached(self, epoch_minute: int) -> tuple[int, int, int]:
        minute_start = epoch_minute * 60
        local = datetime.fromtimestamp(minute_start, UTC).astimezone(self.zone)
        hour_start = minute_start - local.minute * 60
        day_local = local.replace(hour=0, minute=0, second=0, microsecond=0)
        day_start = int(day_local.timestamp())
        return minute_start, hour_start, day_start
