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
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, TypeVar

import redis.exceptions

from streams.aggregators import KpiAggregator
from streams.decoder import Decoder
from streams.events import DecodeLimits, Event, Rejection, RejectReason, TopicKind
from streams.keys import Shard
from streams.sink import RedisSink, StoredShard

log = logging.getLogger(__name__)

T = TypeVar("T")


class Record(NamedTuple):
    """One raw message of a shard (a named tuple: one is built per message)."""

    offset: int
    value: bytes


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """What happened to one shard batch."""

    fresh: int
    skipped: int
    rejected: int
    attempts: int


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


def _minute(event_ms: int) -> int:
    return event_ms // 60_000 * 60


def base_topic(topic: str) -> str:
    """The input topic of a shard's topic (replay shards are ``<topic>@<source>``)."""
    return topic.split("@", 1)[0]


def wall_clock_ms() -> int:
    """Current time in epoch milliseconds (bounds accepted event times and retention)."""
    return time.time_ns() // 1_000_000


class BatchProcessor:
    """Decode, aggregate and apply the batches of any number of shards."""

    def __init__(
        self,
        limits: DecodeLimits,
        aggregator: KpiAggregator,
        sink: RedisSink,
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

    def forget(self, shard: Shard) -> None:
        """Drop the cached state of a shard (after a rebalance takes it away)."""
        self._stored.pop(shard, None)

    async def process(self, shard: Shard, records: Sequence[Record]) -> BatchOutcome:
        """Apply ``records`` (one shard, ascending offsets) exactly once."""
        kind = self.topic_kinds.get(base_topic(shard.topic))
        if kind is None:
            raise ValueError(f"topic {shard.topic!r} is not one of {sorted(self.topic_kinds)}")
        attempts = 0
        published: set[int] = set()
        refused: frozenset[str] = frozenset()  # ids Redis reported as accepted before
        while True:
            attempts += 1
            stored = self._stored.pop(shard, None)
            if stored is None:
                stored = await self._retrying(self.sink.load, shard)
            applied = stored.applied_offset
            fresh = [r for r in records if applied is None or r.offset > applied]
            if applied is not None and fresh and fresh[0].offset > applied + 1:
                log.error(
                    "shard %s: offsets %d..%d were acknowledged but are not in Redis (did Redis "
                    "lose writes?); replay that range with `kpi replay --kafka-topic`",
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
                self._stored[shard] = stored
                return BatchOutcome(0, len(records), 0, attempts)
            now_ms = self.clock_ms()
            decoded = self.decoder.decode_all([r.value for r in fresh], now_ms, kind)
            if self.dedupe:
                decoded = _refuse_duplicates(decoded, refused)
            rejected = 0
            for record, event in zip(fresh, decoded, strict=True):
                if isinstance(event, Rejection):
                    rejected += 1
                    if record.offset not in published:
                        await self.dead_letters.publish(shard, record.offset, event, record.value)
                        published.add(record.offset)
            # The aggregator changes the memory in place; it is only kept if the apply lands.
            delta = self.aggregator.aggregate(decoded, stored.memory, now_ms)
            if self.dedupe:
                for event in decoded:
                    if isinstance(event, Event):
                        delta.seen_ids[_minute(event.event_ms)].add(event.event_id)
            outcome = await self._retrying(
                self.sink.apply, shard, applied, fresh[-1].offset, delta, now_ms
            )
            if outcome.applied:
                self._stored[shard] = StoredShard(outcome.offset, stored.memory)
                return BatchOutcome(len(fresh), len(records) - len(fresh), rejected, attempts)
            if outcome.duplicates:
                # Nothing was written; the memory was changed, so it is reloaded above.
                log.info(
                    "shard %s: %d event id(s) accepted before; refusing them",
                    shard.id,
                    len(outcome.duplicates),
                )
                refused |= outcome.duplicates
                continue
            log.info(
                "shard %s: stored offset %s differs from expected %s; reloading",
                shard.id,
                outcome.offset,
                applied,
            )

    async def _retrying(self, call: Callable[..., Awaitable[T]], *args: Any) -> T:
        delay = self.retry_initial_s
        failing = False
        while True:
            try:
                result = await call(*args)
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
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
