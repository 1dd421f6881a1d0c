"""Replays a Kafka topic range (from an offset or a time, to the end seen at start).

Records keep their real topic, partition and offset, so the replay writes to
the same shards as the live worker and the offset guard skips whatever the
live run (or an earlier replay) already applied: replaying a range is safe
while the worker runs, and fills only what is missing.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.common.keys import Shard
from streams.replay.runner import Processor, ReplayReport, ShardFeeder, count_outcomes
from streams.replay.sources import Progress, SourceError
from streams.worker.pipeline import Record


@dataclass(frozen=True)
class KafkaRange:
    """Where to start: an offset (per partition) or an event-log time, in epoch ms."""

    topic: str
    from_offset: int | None = None
    from_time_ms: int | None = None


async def replay_kafka(
    bootstrap: str,
    span: KafkaRange,
    processor: Processor,
    report: ReplayReport,
    progress: Progress | None = None,
    batch_size: int = 5_000,
    client_kwargs: dict[str, Any] | None = None,
) -> ReplayReport:
    """Apply every record of the range, partition batch by partition batch."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest",
        **(client_kwargs or {}),
    )
    started = time.perf_counter()
    feeders: dict[TopicPartition, ShardFeeder] = {}
    await consumer.start()
    try:
        # A consumer without a subscription may not have a new topic's metadata yet;
        # aiokafka (pinned) asks for it when the topic is added to its client.
        partitions = consumer.partitions_for_topic(span.topic)
        if not partitions:
            await consumer._client.add_topic(span.topic)
            partitions = consumer.partitions_for_topic(span.topic)
        if not partitions:
            raise SourceError(f"topic {span.topic!r} does not exist")
        tps = [TopicPartition(span.topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        if span.from_time_ms is not None:
            found = await consumer.offsets_for_times({tp: span.from_time_ms for tp in tps})
            for tp in tps:
                hit = found.get(tp)
                starts[tp] = hit.offset if hit is not None else ends[tp]
        elif span.from_offset is not None:
            starts = {tp: max(starts[tp], min(span.from_offset, ends[tp])) for tp in tps}
        for tp in tps:
            consumer.seek(tp, starts[tp])
        if progress is not None:
            progress.total_bytes = sum(ends[tp] - starts[tp] for tp in tps)
        remaining = {tp for tp in tps if starts[tp] < ends[tp]}
        feeders = {tp: processor.overlapped(Shard(tp.topic, tp.partition)) for tp in tps}
        while remaining:
            fetched = await consumer.getmany(*remaining, timeout_ms=1000, max_records=batch_size)
            for tp, messages in fetched.items():
                batch = [Record(m.offset, m.value or b"") for m in messages if m.offset < ends[tp]]
                if batch:
                    count_outcomes(report, await feeders[tp].submit(batch))
                    report.records += len(batch)
                    if progress is not None:
                        progress.done_bytes += len(batch)
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        for feeder in feeders.values():
            count_outcomes(report, await feeder.drain())
    finally:
        for feeder in feeders.values():
            feeder.cancel()
        await _stop(consumer)
    report.seconds = time.perf_counter() - started
    return report


async def _stop(consumer: AIOKafkaConsumer) -> None:
    """Stop the consumer, keeping the error that ended the replay.

    aiokafka's stop can raise the CancelledError of one of its own tasks (seen when the
    topic was missing).
    """
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
