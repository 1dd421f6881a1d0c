"""The one code path from raw partition records to an applied Redis batch.

Live agents and replay both call :meth:`BatchProcessor.process` with the records
of one shard, in offset order. It skips what Redis already holds, decodes,
publishes rejections to the dead-letter sink, aggregates, and applies; when the
offset guard reports that another apply got there first, it reloads the
shard's stored state and retries with what is still new. Redis outages are
retried with backoff instead of raised, because an exception would let Faust
acknowledge (and so lose) the batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, TypeVar

import redis.exceptions

from streams.aggregators import BatchDelta, KpiAggregator, ShardMemory
from streams.common.keys import Shard
from streams.ingest.decoder import Decoder
from streams.ingest.events import DecodeLimits, Event, Rejection, RejectReason, TopicKind
from streams.store.sink import Applied, StoredShard

log = logging.getLogger(__name__)

T = TypeVar("T")


class Record(NamedTuple):
    """One raw message of a shard (a named tuple: one is built per message)."""

    offset: int
    value: bytes


REDIS_TRANSIENT = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    # A Redis Cluster moving a slot (resharding) or promoting a replica: redis-py follows
    # MOVED/ASK and retries TRYAGAIN a few times, then raises these. The apply did not
    # run, or ran and is kept exactly once by the offset guard.
    redis.exceptions.ClusterError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.AskError,
)
"""Errors that mean "Redis cannot take it now": retried with backoff, never fatal."""


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """What happened to one shard batch."""

    fresh: int
    skipped: int
    rejected: int
    attempts: int
    late: int = 0
    too_late: int = 0
    rewind_to: int | None = None
    """Set when the batch starts past the stored offset + 1: Redis lost acknowledged
    writes. Nothing was applied; the input should be read again from this offset."""


class DeadLetters(Protocol):
    """Where rejected events go, with the reason and their source position."""

    async def publish(self, shard: Shard, offset: int, rejection: Rejection, raw: bytes) -> None:
        """Record one rejected event (at least once)."""


class DeadLetterList:
    """In-memory dead letters, for replay dry runs and tests."""

    def __init__(self) -> None:
        self.items: list[tuple[Shard, int, Rejection, bytes]] = []

    async def publish(self, shard: Shard, offset: int, rejection: Rejection, raw: bytes) -> None:
        """Keep the rejection in memory."""
        self.items.append((shard, offset, rejection, raw))


def record_seen_ids(delta: BatchDelta, decoded: Iterable[Event | Rejection]) -> None:
    """Note the accepted events' ids by event minute, for the apply's duplicate check."""
    seen = delta.seen_ids
    for event in decoded:
        if isinstance(event, Event):
            seen[event.event_ms // 60_000 * 60].add(event.event_id)


def base_topic(topic: str) -> str:
    """The input topic of a shard's topic (replay shards are ``<topic>@<source>``)."""
    return topic.split("@", 1)[0]


def wall_clock_ms() -> int:
    """Current time in epoch milliseconds (bounds accepted event times and retention)."""
    return time.time_ns() // 1_000_000


class Sink(Protocol):
    """Where applied batches go.

    Redis (:class:`streams.store.sink.RedisSink`) or its in-memory twin
    (:class:`streams.store.memory_sink.MemorySink`).
    """

    async def load(self, shard: Shard) -> StoredShard:
        """The shard's applied offset and memory."""
        ...

    async def apply(
        self, shard: Shard, expected: int | None, last_offset: int, delta: BatchDelta, now_ms: int
    ) -> Applied:
        """Apply ``delta`` atomically if the stored offset is ``expected``."""
        ...


class BatchProcessor:
    """Decode, aggregate and apply the batches of any number of shards."""

    def __init__(
        self,
        limits: DecodeLimits,
        aggregator: KpiAggregator,
        sink: Sink,
        dead_letters: DeadLetters,
        topic_kinds: Mapping[str, TopicKind],
        clock_ms: Callable[[], int] = wall_clock_ms,
        retry_initial_s: float = 0.2,
        retry_max_s: float = 5.0,
        on_health: Callable[[bool], None] | None = None,
        dedupe: bool = True,
    ) -> None:
        self.decoder = Decoder(limits)
        self.dedupe = dedupe
        self.on_health = on_health
        self.aggregator = aggregator
        self.sink = sink
        self.dead_letters = dead_letters
        self.topic_kinds = dict(topic_kinds)
        self.clock_ms = clock_ms
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self._stored: dict[Shard, StoredShard] = {}
        self._gaps_accepted: dict[Shard, int] = {}

    def forget(self, shard: Shard) -> None:
        """Drop the cached state of a shard (after a rebalance takes it away)."""
        self._stored.pop(shard, None)

    def accept_gap(self, shard: Shard, resume_at: int) -> None:
        """Apply ``shard``'s next batch starting at ``resume_at`` despite a gap before it.

        For offsets no longer anywhere: not in Redis and past the input's retention.
        """
        self._gaps_accepted[shard] = resume_at

    async def process(self, shard: Shard, records: Sequence[Record]) -> BatchOutcome:
        """Apply ``records`` (one shard, ascending offsets) exactly once."""
        return await self._process(shard, records, set())

    async def end_input(self, shard: Shard, ended_before_ms: int | None) -> BatchDelta | None:
        """Close the shard's visits and conversations: its input has ended (a replayed log).

        Only if everything open would be closed and forgotten by ``ended_before_ms``
        (None: in any case), so that no live event could still reach them. Applied like a
        batch of no records (the offset stays); returns what it emitted (nothing, and
        nothing applied, when no visit or conversation is kept: a second run of the same
        replay changes nothing), or None when the input ended too recently to close.
        See :meth:`KpiAggregator.end_input`.
        """
        while True:
            stored = await self._take_stored(shard)
            memory = stored.memory
            watermark = memory.watermark_ms
            if (
                stored.applied_offset is None
                or watermark is None
                or not (memory.visits or memory.conversations)
            ):
                self._stored[shard] = stored
                return BatchDelta()
            if (
                ended_before_ms is not None
                and self.aggregator.end_of_input(watermark) >= ended_before_ms
            ):
                self._stored[shard] = stored
                return None
            now_ms = self.clock_ms()
            delta = self.aggregator.end_input(stored.memory, now_ms)
            prepared = PreparedBatch(
                shard,
                stored.applied_offset,
                stored.applied_offset,
                delta,
                stored.memory,
                now_ms,
                0,
                0,
            )
            if (await self._apply(prepared)).applied:
                return delta

    def overlapped(self, shard: Shard) -> OverlappedShard:
        """A feeder of ``shard``'s batches that aggregates one while the previous one applies."""
        return OverlappedShard(self, shard)

    async def _process(
        self, shard: Shard, records: Sequence[Record], published: set[int]
    ) -> BatchOutcome:
        attempts = 0
        refused: frozenset[str] = frozenset()  # ids Redis reported as accepted before
        while True:
            attempts += 1
            stored = await self._take_stored(shard)
            prepared = await self._prepare(shard, records, stored, published, refused)
            if isinstance(prepared, BatchOutcome):
                self._stored[shard] = stored
                return BatchOutcome(0, prepared.skipped, 0, attempts, rewind_to=prepared.rewind_to)
            outcome = await self._apply(prepared)
            if outcome.applied:
                return prepared.outcome(attempts)
            refused |= outcome.duplicates

    async def _take_stored(self, shard: Shard) -> StoredShard:
        """The shard's cached state, or what Redis holds (the cache entry is taken out)."""
        stored = self._stored.pop(shard, None)
        if stored is None:
            stored = await self._retrying(self.sink.load, shard)
        return stored

    async def _prepare(
        self,
        shard: Shard,
        records: Sequence[Record],
        stored: StoredShard,
        published: set[int],
        refused: frozenset[str],
    ) -> PreparedBatch | BatchOutcome:
        """Decode and aggregate what ``stored`` does not hold yet (changes ``stored.memory``).

        Rejections not in ``published`` go to the dead letters and are added to it.
        Returns a skip outcome when every record is already applied.
        """
        kind = self.topic_kinds.get(base_topic(shard.topic))
        if kind is None:
            raise ValueError(f"topic {shard.topic!r} is not one of {sorted(self.topic_kinds)}")
        applied = stored.applied_offset
        fresh = [r for r in records if applied is None or r.offset > applied]
        if applied is not None and fresh and fresh[0].offset > applied + 1:
            if self._gaps_accepted.pop(shard, None) != fresh[0].offset:
                # Acknowledged but not in Redis: a hard crash with appendfsync everysec,
                # an asynchronous replica promoted. Kafka still has them: read them again.
                log.warning(
                    "shard %s: offsets %d..%d were acknowledged but are not in Redis "
                    "(Redis lost writes); reading them again",
                    shard.id,
                    applied + 1,
                    fresh[0].offset - 1,
                )
                return BatchOutcome(0, 0, 0, 0, rewind_to=applied + 1)
            log.error(
                "shard %s: offsets %d..%d are neither in Redis nor in the input any more; "
                "their events are not counted",
                shard.id,
                applied + 1,
                fresh[0].offset - 1,
            )
        if len(fresh) < len(records):
            log.info(
                "shard %s: skipping %d record(s) already applied (offsets <= %s)",
                shard.id,
                len(records) - len(fresh),
                applied,
            )
        if not fresh:
            return BatchOutcome(0, len(records), 0, 0)
        now_ms = self.clock_ms()
        decoded = self.decoder.decode_all([r.value for r in fresh], now_ms, kind)
        if self.dedupe:
            decoded = _refuse_duplicates(decoded, refused)
        rejections = [
            (r, e) for r, e in zip(fresh, decoded, strict=True) if isinstance(e, Rejection)
        ]
        # The aggregator changes the memory in place; it is only kept if the apply lands.
        delta = self.aggregator.aggregate(decoded, stored.memory, now_ms)
        rejections += [(fresh[position], refusal) for position, refusal in delta.refused]
        for record, rejection in rejections:  # the decoder's, then repeated order events
            if record.offset not in published:
                await self.dead_letters.publish(shard, record.offset, rejection, record.value)
                published.add(record.offset)
        rejected = len(rejections)
        if self.dedupe:  # the ids of events counted (a refused order copy's id is not)
            counted: Iterable[Event | Rejection] = decoded
            if delta.refused:
                refused_at = {position for position, _ in delta.refused}
                counted = (e for i, e in enumerate(decoded) if i not in refused_at)
            record_seen_ids(delta, counted)
        return PreparedBatch(
            shard, applied, fresh[-1].offset, delta, stored.memory, now_ms, rejected, len(records)
        )

    async def _apply(self, prepared: PreparedBatch) -> Applied:
        """Send a prepared batch; on success the shard's state is cached, else forgotten."""
        shard = prepared.shard
        outcome = await self._retrying(
            self.sink.apply,
            shard,
            prepared.expected,
            prepared.last_offset,
            prepared.delta,
            prepared.now_ms,
        )
        if outcome.applied:
            self._stored[shard] = StoredShard(outcome.offset, prepared.memory)
        elif outcome.duplicates:
            # Nothing was written; the memory was changed, so it is reloaded.
            log.info(
                "shard %s: %d event id(s) accepted before; refusing them",
                shard.id,
                len(outcome.duplicates),
            )
        else:
            log.info(
                "shard %s: stored offset %s differs from expected %s; reloading",
                shard.id,
                outcome.offset,
                prepared.expected,
            )
        return outcome

    async def _retrying(self, call: Callable[..., Awaitable[T]], *args: Any) -> T:
        delay = self.retry_initial_s
        failing = False
        while True:
            try:
                result = await call(*args)
            except REDIS_TRANSIENT as exc:
                log.warning("redis unavailable (%s); retrying in %.1fs", exc, delay)
                if not failing and self.on_health is not None:
                    self.on_health(False)
                failing = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_s)
            else:
                if failing:
                    log.info("redis is back")
                    if self.on_health is not None:
                        self.on_health(True)
                return result


@dataclass(slots=True)
class PreparedBatch:
    """A decoded and aggregated batch, ready to apply on top of offset ``expected``."""

    shard: Shard
    expected: int | None
    last_offset: int
    delta: BatchDelta
    memory: ShardMemory
    """The shard's memory after this batch (valid once the apply lands)."""
    now_ms: int
    rejected: int
    records: int

    def outcome(self, attempts: int) -> BatchOutcome:
        """What happened to the batch once applied."""
        fresh = self.delta.consumed
        delta = self.delta
        return BatchOutcome(
            fresh, self.records - fresh, self.rejected, attempts, delta.late, delta.too_late
        )


class OverlappedShard:
    """Feeds one shard's batches, preparing the next while the previous one applies.

    Replay has one shard per topic, so the live worker's overlap of partitions
    (one aggregates while another's apply runs in Redis) is not available to it.

    The next batch is prepared on the state the previous one leaves, and sent only
    once that one is applied. If the previous apply is refused (duplicates, or
    another writer moved the offset), the prepared batch is dropped and both go
    through :meth:`BatchProcessor.process` again, from what Redis holds. Only one
    feeder or ``process`` caller may work on a shard at a time.
    """

    def __init__(self, processor: BatchProcessor, shard: Shard) -> None:
        self.processor = processor
        self.shard = shard
        self._published: set[int] = set()
        self._pending: tuple[PreparedBatch, asyncio.Task[Applied], Sequence[Record]] | None = None

    async def submit(self, records: Sequence[Record]) -> list[BatchOutcome]:
        """Prepare ``records`` and start its apply; returns the outcomes finished meanwhile."""
        processor, shard = self.processor, self.shard
        if self._pending is None:
            stored = await processor._take_stored(shard)
        else:
            previous = self._pending[0]
            stored = StoredShard(previous.last_offset, previous.memory)  # if it lands
        prepared = await processor._prepare(shard, records, stored, self._published, frozenset())
        done: list[BatchOutcome] = []
        if self._pending is not None:
            outcome, as_prepared = await self._settle()
            done.append(outcome)
            if not as_prepared:  # this batch was prepared on a state that did not land
                done.append(await processor._process(shard, records, self._published))
                return done
        if isinstance(prepared, BatchOutcome):
            processor._stored[shard] = stored
            done.append(prepared)
            return done
        processor._stored.pop(shard, None)  # the batch in flight owns the state now
        task = asyncio.create_task(processor._apply(prepared))
        await asyncio.sleep(0)  # let it build the request and hand it to its thread now
        self._pending = (prepared, task, records)
        return done

    async def drain(self) -> list[BatchOutcome]:
        """Wait for the batch in flight; its outcome (none if nothing was in flight)."""
        if self._pending is None:
            return []
        outcome, _ = await self._settle()
        return [outcome]

    def cancel(self) -> None:
        """Stop waiting for the batch in flight (Redis applies it whole or not at all)."""
        if self._pending is not None:
            self._pending[1].cancel()
            self._pending = None

    async def _settle(self) -> tuple[BatchOutcome, bool]:
        """The in-flight batch's outcome, and whether it landed as prepared.

        A refused batch is processed again from what Redis holds.
        """
        assert self._pending is not None
        prepared, task, records = self._pending
        self._pending = None
        applied = await task
        if applied.applied:
            self._published = {o for o in self._published if o > prepared.last_offset}
            return prepared.outcome(1), True
        return await self.processor._process(self.shard, records, self._published), False


def _refuse_duplicates(
    decoded: list[Event | Rejection], refused: frozenset[str]
) -> list[Event | Rejection]:
    """Refuse events whose id is in ``refused`` or came earlier in the batch.

    Ids accepted in earlier batches are found by the apply itself (the sink
    refuses a batch holding any and names them); a record Kafka redelivers
    never gets here, the offset guard drops it first.
    """
    seen: set[str] = set()
    out: list[Event | Rejection] = []
    for event in decoded:
        if isinstance(event, Event):
            if event.event_id in refused or event.event_id in seen:
                event = Rejection(
                    RejectReason.DUPLICATE_EVENT_ID, f"event_id {event.event_id[:64]!r}"
                )
            else:
                seen.add(event.event_id)
        out.append(event)
    return out
