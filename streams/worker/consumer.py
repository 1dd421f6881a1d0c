"""The worker's input path: whole fetches from Kafka, one apply per partition, then a commit.

Faust's agent streams hand over one message at a time (conductor, channel
queue, stream iteration, per-message acknowledgement): about 93 µs per event
here, more than the KPI work itself (``docs/benchmarks.md``). This path runs
inside the Faust app as one task, with an aiokafka consumer in the worker's
consumer group (Faust's own consumer subscribes to nothing): each fetch takes
up to ``KPI_BATCH_MAX_EVENTS`` records of every partition that has some, the
partitions go through :class:`streams.worker.pipeline.BatchProcessor` concurrently
(each in offset order), and the fetch's offsets are committed only after
Redis holds all of them. A record delivered twice (after a crash or a
rebalance) is skipped by the offset guard in Redis, so a commit that is lost
or late costs time, never a count.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import OffsetAndMetadata

from streams.common.keys import Shard
from streams.common.settings import Settings
from streams.ingest.kafka_auth import client_kwargs
from streams.worker.pipeline import BatchProcessor, Record

log = logging.getLogger(__name__)


class BatchObserver(Protocol):
    """What the consumer reports (worker metrics)."""

    def observe_batch(self, shard: Shard, records: int, seconds: float) -> None:
        """One partition batch applied."""

    def observe_partition_lag(self, topic: str, partition: int, lag: int) -> None:
        """Records behind the partition's end after a batch."""


class _Forget(ConsumerRebalanceListener):  # type: ignore[misc]
    """Drops a revoked partition's cached state, so a later owner's writes are reloaded."""

    def __init__(self, processor: BatchProcessor) -> None:
        self.processor = processor

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        for tp in revoked:
            self.processor.forget(Shard(tp.topic, tp.partition))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        log.info("assigned partitions: %s", sorted(f"{tp.topic}-{tp.partition}" for tp in assigned))


def new_consumer(
    settings: Settings, topics: Sequence[str], processor: BatchProcessor
) -> AIOKafkaConsumer:
    """An aiokafka consumer of ``topics`` in the worker's group, committing by hand.

    A partition that moves away has its cached state dropped from ``processor``.
    """
    session_ms = int(settings.kafka_session_timeout_seconds * 1000)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.consumer_group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=settings.batch_max_events,
        # whole batches per request: fewer fetch round trips to wait for
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=16 * 1024 * 1024,
        session_timeout_ms=session_ms,
        heartbeat_interval_ms=min(3000, session_ms // 3),
        client_id=f"{settings.consumer_group}-worker",
        **client_kwargs(settings),
    )
    consumer.subscribe(list(topics), listener=_Forget(processor))
    return consumer


async def consume(
    consumer: AIOKafkaConsumer,
    processor: BatchProcessor,
    settings: Settings,
    observer: BatchObserver | None = None,
    batches: int | None = None,
) -> None:
    """Fetch, apply and commit until cancelled (or for ``batches`` fetches, in tests).

    The consumer comes from :func:`new_consumer` and is started. Two fetches
    are in flight at most: while the Redis applies of one run, the next one is
    fetched, decoded and aggregated (a partition's batches still apply in
    order). A fetch is committed once all of its batches are applied. Errors
    from Redis are retried inside the processor; anything else propagates with
    the fetch uncommitted.
    """
    rewinding: dict[TopicPartition, int] = {}
    """Partitions sought back to where Redis's applied offset ends, and that offset."""

    async def apply(
        tp: TopicPartition, messages: Sequence[Any], before: asyncio.Task[int | None] | None
    ) -> int | None:
        if before is not None:
            await before  # the partition's previous batch first
        target = rewinding.get(tp)
        if target is not None:
            if messages[0].offset != target:
                return None  # fetched before the seek; read again after it
            del rewinding[tp]
        shard = Shard(tp.topic, tp.partition)
        records = [Record(m.offset, m.value or b"") for m in messages]
        started = time.perf_counter()
        outcome = await processor.process(shard, records)
        if outcome.rewind_to is not None:
            rewinding[tp] = await _seek_back(consumer, processor, tp, outcome.rewind_to)
            return None
        if observer is not None:
            observer.observe_batch(shard, len(records), time.perf_counter() - started)
            highwater = _highwater(consumer, tp)
            if highwater is not None:
                lag = max(0, highwater - records[-1].offset - 1)
                observer.observe_partition_lag(tp.topic, tp.partition, lag)
        return records[-1].offset + 1

    within_ms = int(settings.batch_within_seconds * 1000)
    previous: dict[TopicPartition, asyncio.Task[int | None]] = {}
    current: dict[TopicPartition, asyncio.Task[int | None]] = {}
    fetched = 0
    try:
        while batches is None or fetched < batches:
            fetched += 1
            groups = await _fetch(consumer, within_ms, settings.batch_max_events)
            current = {
                tp: asyncio.create_task(apply(tp, messages, previous.get(tp)))
                for tp, messages in groups.items()
            }
            await _settle_and_commit(consumer, previous)
            previous, current = current, {}
        await _settle_and_commit(consumer, previous)
        previous = {}
    finally:
        # On an error or a shutdown nothing unsettled is committed; stop what still runs.
        for task in (*previous.values(), *current.values()):
            task.cancel()


async def _fetch(
    consumer: AIOKafkaConsumer, within_ms: int, max_records: int
) -> Mapping[TopicPartition, Sequence[Any]]:
    """Up to ``max_records`` buffered records of every assigned partition, else wait for some.

    aiokafka drains its buffers one partition at a time, so a plain ``getmany``
    mostly returns a single partition; asking each partition for its share
    gives fetches that span the partitions, whose batches then overlap (one
    aggregates while another's apply runs in Redis).
    """
    groups: dict[TopicPartition, Sequence[Any]] = {}
    for tp in consumer.assignment():
        groups.update(await consumer.getmany(tp, timeout_ms=0, max_records=max_records))
    if groups:
        return groups
    found: Mapping[TopicPartition, Sequence[Any]] = await consumer.getmany(
        timeout_ms=within_ms, max_records=max_records
    )
    return found


async def _seek_back(
    consumer: AIOKafkaConsumer, processor: BatchProcessor, tp: TopicPartition, offset: int
) -> int:
    """Read ``tp`` again from ``offset`` (or its first retained offset); where it reads from.

    Offsets before the partition's first retained one are gone: the processor is told
    to apply from there, after logging what is lost.
    """
    first = int((await consumer.beginning_offsets([tp]))[tp])
    target = max(offset, first)
    if first > offset:
        processor.accept_gap(Shard(tp.topic, tp.partition), first)
    log.warning("%s-%d: reading again from offset %d", tp.topic, tp.partition, target)
    consumer.seek(tp, target)
    return target


async def _settle_and_commit(
    consumer: AIOKafkaConsumer, tasks: Mapping[TopicPartition, asyncio.Task[int | None]]
) -> None:
    """Wait for a fetch's batches (raising the first error), then commit past them.

    A partition sought back commits nothing for this fetch.
    """
    if not tasks:
        return
    ends = await asyncio.gather(*tasks.values())
    done = {
        tp: OffsetAndMetadata(end, "")
        for tp, end in zip(tasks, ends, strict=True)
        if end is not None
    }
    if not done:
        return
    try:
        await consumer.commit(done)
    except (CommitFailedError, KafkaError) as exc:
        # The partitions moved (rebalance) or Kafka is away: Redis holds the batch,
        # and whoever reads these records again skips them by the offset guard.
        log.warning("offset commit failed (%s); Redis already holds the batch", exc)


def _highwater(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int | None:
    """The partition's end offset as last fetched; None once it has moved away (rebalance)."""
    try:
        value = consumer.highwater(tp)
    except AssertionError:  # aiokafka asserts the partition is still assigned
        return None
    return None if value is None else int(value)
