"""What a domain handler sees while a batch is folded: config, clock, delta, memory."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from streams.aggregators.delta import BatchDelta
from streams.aggregators.memory import ShardMemory
from streams.timebuckets import Bucket, BucketClock, Granularity


@dataclass(frozen=True)
class AggregatorConfig:
    """The knobs of the KPI definitions (from settings)."""

    retention_s: Mapping[Granularity, int]
    late_after_ms: int = 60_000
    session_timeout_ms: int = 30 * 60_000
    conversation_timeout_ms: int = 24 * 3_600_000
    sla_ms: int = 30_000


@dataclass
class BatchContext:
    """One batch in progress."""

    clock: BucketClock
    config: AggregatorConfig
    delta: BatchDelta
    memory: ShardMemory
    now_s: int

    def expires_at(self, bucket: Bucket) -> int:
        """Epoch second at which a bucket's data is dropped (end + retention)."""
        return self.clock.end_of(bucket) + self.config.retention_s[bucket.granularity]

    def retained(self, event_ms: int) -> tuple[Bucket, ...]:
        """The buckets of ``event_ms`` that are still kept now."""
        return tuple(b for b in self.clock.buckets(event_ms) if self.expires_at(b) > self.now_s)
