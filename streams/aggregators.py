"""Pure aggregation of a partition batch into bucket deltas: no I/O, no clock reads.

The live worker, replay and tests all feed decoded events through
:meth:`TrafficAggregator.aggregate`; the sink turns the resulting
:class:`BatchDelta` into one atomic Redis apply.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from streams.events import PageView, Rejection, RejectReason
from streams.timebuckets import Bucket, BucketClock, Granularity

ANY_CHANNEL = "_all"
"""Channel value of the distinct-visitor sets that ignore the channel (UV overall)."""


@dataclass
class BatchDelta:
    """What one batch adds to the stored state."""

    pageviews: Counter[tuple[Bucket, str]] = field(default_factory=Counter)
    visitors: defaultdict[tuple[Bucket, str], set[str]] = field(
        default_factory=lambda: defaultdict(set)
    )
    rejected: Counter[RejectReason] = field(default_factory=Counter)
    consumed: int = 0
    late: int = 0
    watermark_ms: int | None = None

    @property
    def accepted(self) -> int:
        """Events that changed a KPI."""
        return self.consumed - sum(self.rejected.values())


class TrafficAggregator:
    """Page views and distinct visitors per bucket and channel."""

    def __init__(
        self,
        clock: BucketClock,
        retention_s: Mapping[Granularity, int],
        late_after_ms: int,
    ) -> None:
        self.clock = clock
        self.retention_s = dict(retention_s)
        self.late_after_ms = late_after_ms

    def aggregate(
        self,
        events: Iterable[PageView | Rejection],
        watermark_ms: int | None,
        now_ms: int,
    ) -> BatchDelta:
        """Fold ``events`` (in offset order) onto a delta.

        ``watermark_ms`` is the newest event time already seen on the shard; an
        event older than it by more than ``late_after_ms`` still counts in every
        bucket that is retained, and is also counted as late. Buckets whose
        retention ended before ``now_ms`` are skipped.
        """
        delta = BatchDelta(watermark_ms=watermark_ms)
        now_s = now_ms // 1000
        for event in events:
            delta.consumed += 1
            if isinstance(event, Rejection):
                delta.rejected[event.reason] += 1
                continue
            wm = delta.watermark_ms
            if wm is not None and event.event_ms < wm - self.late_after_ms:
                delta.late += 1
            if wm is None or event.event_ms > wm:
                delta.watermark_ms = event.event_ms
            for bucket in self.clock.buckets(event.event_ms):
                if self.expires_at(bucket) <= now_s:
                    continue
                delta.pageviews[(bucket, event.channel)] += 1
                delta.visitors[(bucket, event.channel)].add(event.visitor_id)
                delta.visitors[(bucket, ANY_CHANNEL)].add(event.visitor_id)
        return delta

    def expires_at(self, bucket: Bucket) -> int:
        """Epoch second at which a bucket's data is dropped (end + retention)."""
        return self.clock.end_of(bucket) + self.retention_s[bucket.granularity]
