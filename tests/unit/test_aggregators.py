from streams.aggregators import ANY_CHANNEL, TrafficAggregator
from streams.events import PageView, Rejection, RejectReason
from streams.timebuckets import Bucket, BucketClock, Granularity

DAY = 86_400
# 2026-11-11T12:00:00Z = 20:00 in Shanghai; the business day began 2026-11-10T16:00Z.
T0 = 1_794_398_400_000
DAY_START = 1_794_326_400
RETENTION = {Granularity.MINUTE: 2 * DAY, Granularity.HOUR: 8 * DAY, Granularity.DAY: 400 * DAY}


def view(ms: int, visitor: str, channel: str = "search") -> PageView:
    return PageView("e", ms, visitor, "s", "/", "home", channel, "", "")


def aggregator(late_after_ms: int = 60_000) -> TrafficAggregator:
    return TrafficAggregator(BucketClock("Asia/Shanghai"), RETENTION, late_after_ms)


def test_page_views_and_visitors_per_bucket_and_channel() -> None:
    events = [
        view(T0, "a"),
        view(T0 + 10_000, "a"),
        view(T0 + 61_000, "b"),
        view(T0 + 62_000, "a", "ads"),
    ]
    delta = aggregator().aggregate(events, None, T0 + 120_000)
    m0, m1 = Bucket(Granularity.MINUTE, T0 // 1000), Bucket(Granularity.MINUTE, T0 // 1000 + 60)
    hour = Bucket(Granularity.HOUR, T0 // 1000)
    day = Bucket(Granularity.DAY, DAY_START)
    assert delta.pageviews[(m0, "search")] == 2
    assert delta.pageviews[(m1, "search")] == 1
    assert delta.pageviews[(m1, "ads")] == 1
    assert delta.pageviews[(hour, "search")] == 3
    assert delta.pageviews[(day, "ads")] == 1
    assert delta.visitors[(m0, "search")] == {"a"}
    assert delta.visitors[(m1, ANY_CHANNEL)] == {"a", "b"}
    assert delta.visitors[(day, ANY_CHANNEL)] == {"a", "b"}
    assert delta.visitors[(day, "search")] == {"a", "b"}
    assert (delta.consumed, delta.accepted, delta.late, delta.watermark_ms) == (
        4,
        4,
        0,
        T0 + 62_000,
    )


def test_rejections_are_counted_but_change_no_kpi() -> None:
    events = [
        Rejection(RejectReason.MALFORMED_JSON, "x"),
        view(T0, "a"),
        Rejection(RejectReason.MALFORMED_JSON, "y"),
        Rejection(RejectReason.TOO_OLD, "z"),
    ]
    delta = aggregator().aggregate(events, None, T0)
    assert delta.rejected == {RejectReason.MALFORMED_JSON: 2, RejectReason.TOO_OLD: 1}
    assert (delta.consumed, delta.accepted) == (4, 1)
    assert sum(delta.pageviews.values()) == 3  # one view in minute, hour and day


def test_late_events_count_in_their_own_buckets_and_as_late() -> None:
    watermark = T0 + 600_000
    events = [view(T0 + 540_000, "a"), view(T0 + 539_999, "b"), view(T0, "c")]
    delta = aggregator(late_after_ms=60_000).aggregate(events, watermark, T0 + 600_000)
    assert delta.late == 2  # 60.001 s and 600 s behind; exactly 60 s is on time
    assert delta.pageviews[(Bucket(Granularity.MINUTE, T0 // 1000), "search")] == 1
    assert delta.watermark_ms == watermark


def test_expired_buckets_are_skipped_but_longer_ones_kept() -> None:
    three_days_later = T0 + 3 * DAY * 1000
    delta = aggregator().aggregate([view(T0, "a")], None, three_days_later)
    grans = {bucket.granularity for bucket, _ in delta.pageviews}
    assert grans == {Granularity.HOUR, Granularity.DAY}


def test_empty_batch() -> None:
    delta = aggregator().aggregate([], 5, T0)
    assert (delta.consumed, delta.late, delta.watermark_ms, len(delta.pageviews)) == (0, 0, 5, 0)
