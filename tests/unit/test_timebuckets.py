from datetime import UTC, datetime
from itertools import pairwise
from zoneinfo import ZoneInfo

from streams.common.timebuckets import Bucket, BucketClock, Granularity


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def epoch(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


def test_shanghai_day_starts_at_16_utc() -> None:
    clock = BucketClock("Asia/Shanghai")
    before = clock.buckets(ms("2026-11-11T15:59:59.999+00:00"))
    after = clock.buckets(ms("2026-11-11T16:00:00.000+00:00"))
    assert len(before) == 5
    assert before[2] == Bucket(Granularity.DAY, epoch("2026-11-10T16:00:00+00:00"))
    assert after[2] == Bucket(Granularity.DAY, epoch("2026-11-11T16:00:00+00:00"))
    assert after[1] == Bucket(Granularity.HOUR, epoch("2026-11-11T16:00:00+00:00"))
    assert before[0] == Bucket(Granularity.MINUTE, epoch("2026-11-11T15:59:00+00:00"))


def test_event_exactly_on_a_minute_edge_opens_the_new_minute() -> None:
    clock = BucketClock("Asia/Shanghai")
    minute, hour, *_ = clock.buckets(ms("2026-11-11T20:00:00+08:00"))
    assert minute.start == epoch("2026-11-11T12:00:00+00:00")
    assert hour.start == minute.start


def test_hours_follow_the_zone_offset_not_utc() -> None:
    clock = BucketClock("Asia/Kathmandu")  # UTC+05:45
    _, hour, day, *_ = clock.buckets(ms("2026-11-11T10:20:00+00:00"))
    assert hour.start == epoch("2026-11-11T10:15:00+00:00")
    assert day.start == epoch("2026-11-10T18:15:00+00:00")


def test_day_length_across_daylight_saving_change() -> None:
    clock = BucketClock("America/New_York")
    _, _, day, *_ = clock.buckets(ms("2026-11-01T12:00:00-05:00"))
    assert day.start == epoch("2026-11-01T00:00:00-04:00")
    assert clock.end_of(day) - day.start == 25 * 3600


def test_start_of_and_end_of() -> None:
    clock = BucketClock("Asia/Shanghai")
    t = datetime(2026, 11, 11, 12, 34, 56, tzinfo=UTC).timestamp()
    assert clock.start_of(Granularity.HOUR, t) == epoch("2026-11-11T12:00:00+00:00")
    day = Bucket(Granularity.DAY, clock.start_of(Granularity.DAY, t))
    assert clock.end_of(day) - day.start == 86_400
    assert clock.end_of(Bucket(Granularity.MINUTE, 120)) == 180


def test_iso_week_starts_monday_and_month_on_the_first_in_business_time() -> None:
    clock = BucketClock("Asia/Shanghai")
    # Sunday 2026-11-29 23:59 CST is still ISO week 48 (from Monday 2026-11-23).
    *_, week, month = clock.buckets(ms("2026-11-29T23:59:59+08:00"))
    assert week.start == epoch("2026-11-23T00:00:00+08:00")
    assert month.start == epoch("2026-11-01T00:00:00+08:00")
    *_, next_week, _ = clock.buckets(ms("2026-11-30T00:00:00+08:00"))
    assert next_week.start == epoch("2026-11-30T00:00:00+08:00")
    assert clock.end_of(week) == next_week.start
    *_, december = clock.buckets(ms("2026-12-01T00:00:00+08:00"))
    assert clock.end_of(month) == december.start
    assert clock.previous(december) == month
    assert clock.end_of(december) == epoch("2027-01-01T00:00:00+08:00")


def test_a_week_or_month_distinct_set_is_read_from_its_days() -> None:
    # Europe/Berlin: March 2026 has a 23-hour day (the 29th); its days still cover it.
    clock = BucketClock("Europe/Berlin")
    march = clock.bucket_at(Granularity.MONTH, datetime(2026, 3, 15, tzinfo=UTC).timestamp())
    days = clock.distinct_parts(march)
    assert len(days) == 31
    assert days[0].start == march.start
    assert all(clock.end_of(a) == b.start for a, b in pairwise(days))
    assert clock.end_of(days[-1]) == clock.end_of(march)
    assert {d.granularity for d in days} == {Granularity.DAY}
    week = clock.bucket_at(Granularity.WEEK, datetime(2026, 3, 29, 12, tzinfo=UTC).timestamp())
    assert len(clock.distinct_parts(week)) == 7
    day = clock.bucket_at(Granularity.DAY, 0)
    assert clock.distinct_parts(day) == (day,)


def test_the_hour_repeated_after_midnight_falls_in_its_own_day() -> None:
    # Atlantic/Azores falls back from 01:00 to 00:00 on 2026-10-25: 00:30 happens twice.
    zone = ZoneInfo("Atlantic/Azores")
    clock = BucketClock("Atlantic/Azores")
    first = datetime(2026, 10, 25, 0, 30, tzinfo=zone, fold=0).timestamp()
    second = datetime(2026, 10, 25, 0, 30, tzinfo=zone, fold=1).timestamp()
    assert second - first == 3600
    day = clock.bucket_at(Granularity.DAY, first)
    assert clock.bucket_at(Granularity.DAY, second) == day
    assert day.start == datetime(2026, 10, 25, tzinfo=zone).timestamp()
    week = clock.bucket_at(Granularity.WEEK, second)
    assert day in clock.distinct_parts(week)
