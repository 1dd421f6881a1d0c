"""Kafka chores of a run: its topics, filling them, reading their end offsets."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from loadtest.generator import generate, produce
from loadtest.throughput.common import PARTITIONS
from streams.common.settings import Settings
from streams.ingest.topics import create_topics


def run_settings(base: Settings, run_id: str, name: str) -> Settings:
    """Settings whose topics, group and Redis prefix belong to this run alone.

    Every name starts with ``run_id``, so cleaning up is one prefix match.
    """
    return base.replace(
        clickstream_topic=f"{run_id}-{name}-clickstream",
        orders_topic=f"{run_id}-{name}-orders",
        chat_topic=f"{run_id}-{name}-chat",
        marketing_topic=f"{run_id}-{name}-marketing",
        dead_letter_topic=f"{run_id}-{name}-dead-letter",
        topic_partitions=PARTITIONS,
        consumer_group=f"{run_id}-{name}-worker",
        redis_prefix=f"{run_id}-{name}",
    )


async def create_run_topics(settings: Settings) -> None:
    """The four input topics and the dead-letter topic, through the service's own code."""
    await create_topics(settings, wait_s=30)


async def delete_run_topics(bootstrap: str, run_id: str) -> list[str]:
    """Delete every topic whose name contains ``run_id`` (inputs, Faust's and Quix's own)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        doomed = [name for name in await admin.list_topics() if run_id in name]
        if doomed:
            await admin.delete_topics(doomed)
        return doomed
    finally:
        await admin.close()


@dataclass(frozen=True)
class Filled:
    """A topic filled with generated page views."""

    events: int
    visitors: int
    visitor_minutes: int  # distinct (visitor, minute) pairs: the exact sum of per-minute UV
    last_offsets: dict[int, int]
    seconds: float


async def fill(
    bootstrap: str, topic: str, events: int, seed: int, exact_minutes: bool, chunk: int = 250_000
) -> Filled:
    """Produce ``events`` generated page views (keyed by visitor) as fast as Kafka takes them.

    Generated in chunks so ten million events never sit in memory at once;
    each chunk covers the ten minutes before now, so every event is fresh
    enough for the worker's retention and the exporter's 30-minute window.
    ``exact_minutes`` also counts distinct visitors per minute (costly for
    large runs; ``visitor_minutes`` is 0 without it).
    """
    last: dict[int, int] = {}
    visitors: set[bytes] = set()
    visitor_minutes: dict[int, set[str]] = {}
    seconds = 0.0
    done = 0
    part = 0
    while done < events:
        size = min(chunk, events - done)
        end_ms = int(time.time() * 1000)
        generated = generate(size, end_ms - 600_000, 600, seed=seed + part)
        visitors.update(key for key, _ in generated.messages)
        minutes = generated.truth.visitors["m"].items() if exact_minutes else ()
        for start, channels in minutes:
            visitor_minutes.setdefault(start, set()).update(channels["_all"])
        produced = await produce(bootstrap, topic, generated.messages)
        for partition, offset in produced.last_offsets.items():
            last[partition] = max(last.get(partition, -1), offset)
        seconds += produced.seconds
        done += size
        part += 1
    pairs = sum(len(members) for members in visitor_minutes.values())
    return Filled(done, len(visitors), pairs, last, seconds)


class EndOffsets:
    """Reads a topic's end offsets (next offset to be written) without joining a group."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)

    async def __aenter__(self) -> EndOffsets:
        await self.consumer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.consumer.stop()

    async def read(self) -> dict[int, int]:
        """Partition -> end offset."""
        parts = [TopicPartition(self.topic, p) for p in range(PARTITIONS)]
        ends = await self.consumer.end_offsets(parts)
        return {tp.partition: int(offset) for tp, offset in ends.items()}


def page_view(visitor: str, event_ms: int, rng: random.Random) -> bytes:
    """One valid page view stamped ``event_ms`` (epoch ms, as the schema allows)."""
    page_type = rng.choice(("home", "product", "category", "search", "cart"))
    channel = rng.choice(("search", "ads", "social", "direct"))
    return (
        b'{"schema":1,"type":"page_view","event_id":"%s","event_time":%d,"visitor_id":"%s",'
        b'"page":"/%s/%d","page_type":"%s","channel":"%s","device":"app"}'
        % (
            f"{visitor}-{event_ms}-{rng.getrandbits(32):08x}".encode(),
            event_ms,
            visitor.encode(),
            page_type.encode(),
            rng.randrange(500),
            page_type.encode(),
            channel.encode(),
        )
    )


async def wait_for_partitions(bootstrap: str, topic: str, timeout_s: float = 30) -> None:
    """Wait until the topic's metadata lists every partition (fresh topics take a moment)."""
    async with EndOffsets(bootstrap, topic) as ends:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if len(await ends.read()) == PARTITIONS:
                    return
            except Exception:  # metadata not there yet
                if time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.2)
