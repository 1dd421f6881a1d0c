"""The consuming loop commits a partition only after its batch is applied."""

import asyncio
from dataclasses import dataclass

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError

from streams.common.keys import Shard
from streams.common.settings import Settings
from streams.worker.consumer import _fetch, consume
from streams.worker.pipeline import BatchOutcome, Record


@dataclass
class Message:
    offset: int
    value: bytes


class FakeConsumer:
    def __init__(self, fetches: list[dict[TopicPartition, list[Message]]], log: list[object]):
        self.fetches = fetches
        self.log = log
        self.fail_commit = False

    def assignment(self) -> set[TopicPartition]:
        return set()  # nothing buffered: every fetch is a waiting getmany

    async def getmany(self, timeout_ms: int, max_records: int) -> dict:
        return self.fetches.pop(0) if self.fetches else {}

    def highwater(self, tp: TopicPartition) -> int:
        assert tp != A1, "Partition is not assigned"  # as aiokafka does after a rebalance
        return 100

    async def commit(self, offsets: dict) -> None:
        self.log.append(
            ("commit", {(tp.topic, tp.partition): o.offset for tp, o in offsets.items()})
        )
        if self.fail_commit:
            raise CommitFailedError("rebalanced")


class FakeProcessor:
    def __init__(self, log: list[object], fail_on: str | None = None):
        self.log = log
        self.fail_on = fail_on

    async def process(self, shard: Shard, records: list[Record]) -> BatchOutcome:
        if shard.topic == self.fail_on:
            raise RuntimeError("boom")
        self.log.append(("apply", shard.topic, shard.partition, [r.offset for r in records]))
        return BatchOutcome(len(records), 0, 0, 1)


class Observer:
    def __init__(self) -> None:
        self.lags: list[tuple[str, int, int]] = []
        self.batches: list[tuple[str, int]] = []

    def observe_batch(self, shard: Shard, records: int, seconds: float) -> None:
        self.batches.append((shard.topic, records))

    def observe_partition_lag(self, topic: str, partition: int, lag: int) -> None:
        self.lags.append((topic, partition, lag))


A0, A1, B0 = TopicPartition("a", 0), TopicPartition("a", 1), TopicPartition("b", 0)
SETTINGS = Settings.from_env({})


def fetches() -> list[dict[TopicPartition, list[Message]]]:
    return [
        {A0: [Message(5, b"x"), Message(6, b"y")], B0: [Message(0, b"z")]},
        {},
        {A1: [Message(9, b"w")]},
    ]


def test_each_fetch_is_applied_per_partition_then_committed_past_its_last_offset() -> None:
    log: list[object] = []
    observer = Observer()
    consumer = FakeConsumer(fetches(), log)
    asyncio.run(consume(consumer, FakeProcessor(log), SETTINGS, observer, batches=3))  # type: ignore[arg-type]
    assert log == [
        ("apply", "a", 0, [5, 6]),
        ("apply", "b", 0, [0]),
        ("commit", {("a", 0): 7, ("b", 0): 1}),
        ("apply", "a", 1, [9]),
        ("commit", {("a", 1): 10}),
    ]
    assert observer.lags == [("a", 0, 93), ("b", 0, 99)]  # a-1 moved away: no lag
    assert observer.batches == [("a", 2), ("b", 1), ("a", 1)]


def test_a_failing_apply_commits_nothing_of_its_fetch() -> None:
    log: list[object] = []
    consumer = FakeConsumer(fetches(), log)
    with pytest.raises(RuntimeError):
        asyncio.run(consume(consumer, FakeProcessor(log, fail_on="b"), SETTINGS, batches=3))  # type: ignore[arg-type]
    assert log == [("apply", "a", 0, [5, 6])]


def test_a_refused_commit_does_not_stop_consuming() -> None:
    log: list[object] = []
    consumer = FakeConsumer(fetches(), log)
    consumer.fail_commit = True
    asyncio.run(consume(consumer, FakeProcessor(log), SETTINGS, batches=3))  # type: ignore[arg-type]
    assert [entry[0] for entry in log] == ["apply", "apply", "commit", "apply", "commit"]


class BufferedConsumer:
    """Holds buffered records per partition, drained like aiokafka's fetcher."""

    def __init__(self, buffers: dict[TopicPartition, int]) -> None:
        self.buffers = {tp: [Message(i, b"v") for i in range(n)] for tp, n in buffers.items()}
        self.waited = False

    def assignment(self) -> set[TopicPartition]:
        return set(self.buffers)

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int, max_records: int
    ) -> dict[TopicPartition, list[Message]]:
        if not partitions:
            self.waited = True
            partitions = tuple(self.buffers)
        out = {}
        for tp in partitions:
            taken, self.buffers[tp] = self.buffers[tp][:max_records], self.buffers[tp][max_records:]
            if taken:
                out[tp] = taken
                max_records -= len(taken)
            if max_records == 0:
                break
        return out


def test_a_fetch_takes_its_share_from_every_partition_with_records() -> None:
    consumer = BufferedConsumer({A0: 3000, A1: 0, B0: 700})
    groups = asyncio.run(_fetch(consumer, 500, 2000))  # type: ignore[arg-type]
    assert {tp: len(m) for tp, m in groups.items()} == {A0: 2000, B0: 700}
    assert not consumer.waited
    groups = asyncio.run(_fetch(consumer, 500, 2000))  # type: ignore[arg-type]
    assert {tp: [m.offset for m in ms][:1] for tp, ms in groups.items()} == {A0: [2000]}
    assert asyncio.run(_fetch(consumer, 500, 2000)) == {}  # type: ignore[arg-type]
    assert consumer.waited  # nothing buffered: it waited for records
