"""Feeds replayed records to the live code path, with progress and a report.

Records of each topic kind go, in batches, to one replay shard per kind
(``<topic>@<source id>``, partition 0) through the same
:class:`~streams.worker.pipeline.BatchProcessor` as the worker, so buckets, sessions
and exactly-once behave as they do live. A dry run gives the processor the
store's in-memory twin (:class:`~streams.store.memory_sink.MemorySink`) instead of Redis.
"""

from __future__ import annotations

import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TextIO

from streams.aggregators import BatchDelta
from streams.common.errors import SinkError
from streams.common.keys import Shard
from streams.ingest.events import Rejection, TopicKind
from streams.replay.sources import Progress, SourceRecord
from streams.worker.pipeline import BatchOutcome, Record

MAX_REPORTED_REJECTS = 20


class ShardFeeder(Protocol):
    """Takes one shard's batches in order (see :class:`streams.worker.pipeline.OverlappedShard`)."""

    async def submit(self, records: Sequence[Record]) -> list[BatchOutcome]:
        """Start a batch; the outcomes of batches finished meanwhile."""

    async def drain(self) -> list[BatchOutcome]:
        """Finish the batch in flight; its outcome."""

    def cancel(self) -> None:
        """Stop waiting for the batch in flight."""


class Processor(Protocol):
    """What replay needs of a batch processor."""

    def overlapped(self, shard: Shard) -> ShardFeeder:
        """A feeder of one shard's batches."""

    async def end_input(self, shard: Shard, ended_before_ms: int | None) -> BatchDelta | None:
        """Close the shard's visits and conversations (see ``BatchProcessor.end_input``)."""


def count_outcomes(report: ReplayReport, outcomes: Iterable[BatchOutcome]) -> None:
    """Add finished batches to the report.

    Raises :class:`~streams.common.errors.SinkError` when Redis lost writes this replay
    had applied (its offsets are behind a batch): run the replay again, what Redis
    still holds is skipped.
    """
    for outcome in outcomes:
        if outcome.rewind_to is not None:
            raise SinkError(
                f"Redis lost writes this replay had applied (it holds records up to "
                f"{outcome.rewind_to - 1} of a source): run the same replay again; what "
                "Redis still holds is skipped"
            )
        report.applied += outcome.fresh
        report.skipped += outcome.skipped
        report.late += outcome.late
        report.too_late += outcome.too_late


@dataclass
class ReplayReport:
    """What a replay did."""

    records: int = 0
    applied: int = 0
    skipped: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    first_rejects: list[str] = field(default_factory=list)
    seconds: float = 0.0
    late: int = 0
    too_late: int = 0
    """Events behind the watermark, and those too late to join a visit or conversation."""
    ended_visits: int = 0
    ended_conversations: int = 0
    """Visits and conversations the end of the input closed."""
    left_open: list[str] = field(default_factory=list)
    """Shards whose input ended too recently to close (a live event could still come)."""

    @property
    def events_per_second(self) -> float:
        """Records handled per second of wall time."""
        return self.records / self.seconds if self.seconds else 0.0


class ReplayDeadLetters:
    """Rejected records of a replay, reported with their file and line."""

    def __init__(self, report: ReplayReport, rejects: TextIO | None = None) -> None:
        self.report = report
        self.rejects = rejects
        self._sources: dict[Shard, list[tuple[int, Sequence[SourceRecord]]]] = {}

    def track(self, shard: Shard, first_offset: int, batch: Sequence[SourceRecord]) -> None:
        """Remember where a batch's records came from, for the two latest batches of a shard.

        Rejections are published while a batch is prepared, or while the batch
        before it (the one in flight) is redone after a refused apply.
        """
        kept = self._sources.setdefault(shard, [])
        kept.append((first_offset, batch))
        del kept[:-2]

    async def publish(self, shard: Shard, offset: int, rejection: Rejection, raw: bytes) -> None:
        """Count the rejection and report it with its file and line."""
        where, detail = f"{shard.id}@{offset}", rejection.detail
        for first, batch in self._sources.get(shard, ()):
            if first <= offset < first + len(batch):
                where = batch[offset - first].location
                detail = batch[offset - first].problem or detail
        self.report.rejected[rejection.reason.value] += 1
        line = f"{where}: {rejection.reason.value}: {detail}"
        if len(self.report.first_rejects) < MAX_REPORTED_REJECTS:
            self.report.first_rejects.append(line)
        if self.rejects is not None:
            self.rejects.write(line + "\n")


class ProgressBar:
    """One status line: percent, events, events per second, time remaining."""

    def __init__(self, progress: Progress, out: TextIO = sys.stderr, every_s: float = 0.5) -> None:
        self.progress = progress
        self.out = out
        self.every_s = every_s if out.isatty() else 10.0
        self.started = time.perf_counter()
        self.last = 0.0

    def update(self, records: int, final: bool = False) -> None:
        """Redraw if due (always when ``final``)."""
        now = time.perf_counter()
        if not final and now - self.last < self.every_s:
            return
        self.last = now
        elapsed = max(now - self.started, 1e-9)
        total = max(self.progress.total_bytes, 1)
        share = min(1.0, self.progress.done_bytes / total)
        rate = records / elapsed
        remaining = elapsed * (1 - share) / share if share > 0 else 0.0
        bar = "#" * int(share * 30)
        line = (
            f"[{bar:<30}] {share:6.1%}  {records:,} events  {rate:,.0f}/s  "
            f"ETA {int(remaining) // 60}:{int(remaining) % 60:02d}"
        )
        end = "\n" if final or not self.out.isatty() else ""
        self.out.write(("\r" if self.out.isatty() else "") + line + end)
        self.out.flush()


async def replay(
    records: Iterable[SourceRecord],
    processor: Processor,
    dead_letters: ReplayDeadLetters,
    topics: Mapping[TopicKind, str],
    source: str,
    batch_size: int = 5_000,
    bar: ProgressBar | None = None,
    ended_before_ms: int | None = None,
) -> ReplayReport:
    """Apply every record, in order, one replay shard per topic kind.

    At the end each shard's visits and conversations are closed, as the end of a
    finished log closes them, if its newest event is older than the longest timeout
    plus the allowed lateness before ``ended_before_ms`` (None: in any case); else they
    stay open, as a live partition's would (``report.left_open``).
    """
    report = dead_letters.report
    started = time.perf_counter()
    sequence: Counter[TopicKind] = Counter()
    pending: dict[TopicKind, list[SourceRecord]] = defaultdict(list)
    shards = {kind: Shard(f"{topic}@{source}", 0) for kind, topic in topics.items()}
    feeders = {kind: processor.overlapped(shard) for kind, shard in shards.items()}

    async def flush(kind: TopicKind) -> None:
        batch = pending.pop(kind, [])
        if batch:
            report.records += len(batch)
            first = sequence[kind]
            sequence[kind] += len(batch)
            dead_letters.track(shards[kind], first, batch)
            records = [Record(offset, r.value) for offset, r in enumerate(batch, first)]
            count_outcomes(report, await feeders[kind].submit(records))

    try:
        for record in records:
            batch = pending[record.kind]
            batch.append(record)
            if len(batch) >= batch_size:
                await flush(record.kind)
                if bar is not None:
                    bar.update(report.records)
        for kind in list(pending):
            await flush(kind)
        for feeder in feeders.values():
            count_outcomes(report, await feeder.drain())
        for kind, shard in shards.items():
            if not sequence[kind]:
                continue
            ended = await processor.end_input(shard, ended_before_ms)
            if ended is None:
                report.left_open.append(shard.id)
            else:
                report.ended_visits += ended.ended_visits
                report.ended_conversations += ended.ended_conversations
    finally:
        for feeder in feeders.values():
            feeder.cancel()
    report.seconds = time.perf_counter() - started
    if bar is not None:
        bar.update(report.records, final=True)
    return report
