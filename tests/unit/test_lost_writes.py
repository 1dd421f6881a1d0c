"""When Redis loses acknowledged writes, the worker reads the input again from its offset.

A stored offset behind a batch's first offset means Redis lost writes that Kafka had
been told were done (a hard crash with ``appendfsync everysec``, a replica promoted).
The processor applies nothing and says where to read again; the consumer seeks there,
drops what it fetched before the seek, and commits nothing for the partition meanwhile.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from aiokafka import TopicPartition

from streams.common.keys import Shard
from streams.common.settings import Settings
from streams.common.timebuckets import Granularity
from streams.ingest.events import TopicKind
from streams.store.memory_sink import MemorySink
from streams.worker.consumer import consume
from streams.worker.pipeline import BatchOutcome, BatchProcessor, DeadLetterList, Record
from streams.worker.runtime import aggregator, decode_limits
from tests.unit.test_event_time import MIN, NOW_MS

SHARD = Shard("clickstream", 0)


def views(offsets: range) -> list[Record]:
    return [
        Record(
            o,
            json.dumps(
                {
                    "type": "page_view",
                    "event_id": f"e{o}",
                    "event_time": NOW_MS - 30 * MIN + o * 1000,
                    "visitor_id": f"v{o}",
                    "page": "/",
                    "page_type": "home",
                    "channel": "search",
                }
            ).encode(),
        )
        for o in offsets
    ]


def processor(sink: MemorySink) -> BatchProcessor:
    settings = Settings()
    return BatchProcessor(
        decode_limits(settings),
        aggregator(settings),
        sink,
        DeadLetterList(),
        {"clickstream": TopicKind.CLICKSTREAM},
        clock_ms=lambda: NOW_MS,
    )


def pv(sink: MemorySink) -> int:
    """Page views counted in day buckets (all of these views fall on one day)."""
    return sum(
        n
        for (bucket, name), n in sink.shards[SHARD].counters.items()
        if name == "pv" and bucket.granularity is Granularity.DAY
    )


def test_a_batch_past_the_stored_offset_is_not_applied_and_says_where_to_read_again() -> None:
    sink = MemorySink()
    work = processor(sink)
    assert asyncio.run(work.process(SHARD, views(range(0, 3)))).fresh == 3
    # Redis lost the writes of offsets 3..4 (acknowledged); the next batch starts at 5.
    outcome = asyncio.run(work.process(SHARD, views(range(5, 8))))
    assert outcome.rewind_to == 3 and outcome.fresh == 0
    assert sink.shards[SHARD].applied == 2
    # Read again from 3: everything counts once.
    assert asyncio.run(work.process(SHARD, views(range(3, 8)))).fresh == 5
    assert sink.shards[SHARD].applied == 7
    assert pv(sink) == 8


def test_a_gap_past_the_inputs_retention_is_applied_after_saying_so() -> None:
    sink = MemorySink()
    work = processor(sink)
    asyncio.run(work.process(SHARD, views(range(0, 3))))
    assert asyncio.run(work.process(SHARD, views(range(5, 8)))).rewind_to == 3
    work.accept_gap(SHARD, 5)  # offsets 3 and 4 are no longer in Kafka either
    outcome = asyncio.run(work.process(SHARD, views(range(5, 8))))
    assert outcome.rewind_to is None and outcome.fresh == 3
    assert pv(sink) == 6


@dataclass
class Message:
    offset: int
    value: bytes


class SeekingConsumer:
    """Serves fetches; after a seek, serves the partition again from the sought offset."""

    def __init__(self, log: list[object], first_retained: int = 0) -> None:
        self.log = log
        self.first_retained = first_retained
        self.fetches: list[dict[TopicPartition, list[Message]]] = [
            {TP: [Message(o, b"x") for o in (5, 6)]},  # Redis holds up to 2
            {TP: [Message(o, b"x") for o in (7, 8)]},  # fetched before the seek: dropped
        ]

    def assignment(self) -> set[TopicPartition]:
        return set()

    async def getmany(self, timeout_ms: int, max_records: int) -> dict:
        return self.fetches.pop(0) if self.fetches else {}

    def highwater(self, tp: TopicPartition) -> int:
        return 9

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.first_retained for tp in tps}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.log.append(("seek", offset))
        self.fetches.append({tp: [Message(o, b"x") for o in range(offset, 9)]})

    async def commit(self, offsets: dict) -> None:
        self.log.append(("commit", {tp.partition: o.offset for tp, o in offsets.items()}))


class StoredUpTo:
    """A processor whose Redis holds the partition up to ``applied``."""

    def __init__(self, log: list[object], applied: int) -> None:
        self.log = log
        self.applied = applied
        self.gap_accepted: int | None = None

    def accept_gap(self, shard: Shard, resume_at: int) -> None:
        self.gap_accepted = resume_at

    async def process(self, shard: Shard, records: list[Record]) -> BatchOutcome:
        first = records[0].offset
        if first > self.applied + 1 and first != self.gap_accepted:
            self.log.append(("refused", first))
            return BatchOutcome(0, 0, 0, 1, rewind_to=self.applied + 1)
        self.log.append(("apply", [r.offset for r in records]))
        self.applied = records[-1].offset
        return BatchOutcome(len(records), 0, 0, 1)


TP = TopicPartition("clickstream", 0)


def test_the_consumer_reads_again_from_the_stored_offset_and_commits_after() -> None:
    log: list[object] = []
    consumer = SeekingConsumer(log)
    asyncio.run(consume(consumer, StoredUpTo(log, 2), Settings(), batches=4))  # type: ignore[arg-type]
    assert log == [
        ("refused", 5),
        ("seek", 3),
        ("apply", [3, 4, 5, 6, 7, 8]),  # 7, 8 fetched before the seek were dropped
        ("commit", {0: 9}),
    ]


def test_offsets_past_retention_are_skipped_with_the_gap_accepted() -> None:
    log: list[object] = []
    consumer = SeekingConsumer(log, first_retained=4)  # offset 3 is gone from Kafka too
    work = StoredUpTo(log, 2)
    asyncio.run(consume(consumer, work, Settings(), batches=4))  # type: ignore[arg-type]
    assert work.gap_accepted == 4
    assert log == [("refused", 5), ("seek", 4), ("apply", [4, 5, 6, 7, 8]), ("commit", {0: 9})]
