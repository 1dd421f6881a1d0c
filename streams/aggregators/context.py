"""What a domain handler sees while a batch is folded: config, clock, delta, memory."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from streams.aggregators.columns import PageViewColumns
from streams.aggregators.delta import BatchDelta
from streams.aggregators.memory import Message, ShardMemory, View
from streams.common.timebuckets import Bucket, BucketClock, Granularity


@dataclass(frozen=True)
class AggregatorConfig:
    """The knobs of the KPI definitions (from settings)."""

    retention_s: Mapping[Granularity, int]
    late_after_ms: int = 60_000
    session_timeout_ms: int = 30 * 60_000
    conversation_timeout_ms: int = 24 * 3_600_000
    allowed_lateness_ms: int = 3 * 3_600_000
    """How far behind the watermark an event may be and still join (and correct) its visit
    or conversation."""
    sla_ms: int = 30_000
    order_dedupe_ms: int = 3 * 86_400_000
    """How long (event time, behind the watermark) an order id's events are remembered, so
    that a copy with a new event id is refused."""
    kept_from_s: int = 0
    """History replays (``kpi replay --history``): a bucket that ended before this epoch
    second is kept for its retention counted from it, not from the bucket's end."""


@dataclass
class BatchContext:
    """One batch in progress."""

    clock: BucketClock
    config: AggregatorConfig
    delta: BatchDelta
    memory: ShardMemory
    now_s: int
    _retained: dict[int, tuple[Bucket, ...]] = field(default_factory=dict)
    watermark_before: int | None = None
    """The shard's watermark when the batch began."""
    visits_touched: dict[str, int] = field(default_factory=dict)
    """Visitors this batch gave views to, and how many views each had before it."""
    visits_before: dict[str, list[View]] = field(default_factory=dict)
    """For each visitor that got a view out of the usual case (see
    :func:`streams.aggregators.visits.add_view`), the views the batch's figures so far
    stand on."""
    page_views: PageViewColumns = field(default_factory=PageViewColumns)
    """The batch's page views as columns, folded into the delta at its end."""
    conversations_before: dict[str, list[Message]] = field(default_factory=dict)
    """The messages of each conversation this batch changed, as they were before it:
    the figures they gave are withdrawn and the new ones emitted at the end of the batch."""

    def expires_at(self, bucket: Bucket) -> int:
        """Epoch second at which a bucket's data is dropped (end + retention)."""
        end = max(self.clock.end_of(bucket), self.config.kept_from_s)
        return end + self.config.retention_s[bucket.granularity]

    def retained(self, event_ms: int) -> tuple[Bucket, ...]:
        """The buckets of ``event_ms`` that are still kept now (cached per minute)."""
        minute = event_ms // 60_000
        found = self._retained.get(minute)
        if found is None:
            found = tuple(
                b for b in self.clock.buckets(event_ms) if self.expires_at(b) > self.now_s
            )
            self._retained[minute] = found
        return found
