"""The mixed workload: generated shop traffic on all four topics, produced in time order.

``loadtest.shop_generator.generate_shop`` plays visitors (page views, clicks, carts,
orders, payments, reviews), customer-service conversations and cost reports over
the ten minutes before now; its messages keep the generator's own proportions
and keys (visitor, conversation or channel) and are produced merged in event
time, each to the run's topic of its kind.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaProducer

from loadtest.shop_generator import ShopTraffic, generate_shop
from loadtest.shop_truth import TOPIC_KINDS
from loadtest.throughput.common import BenchRun, Contender, say
from loadtest.throughput.contenders import run_module
from loadtest.throughput.exporter import Exporter, consumed
from loadtest.throughput.kafka import create_run_topics, run_settings, wait_for_partitions
from loadtest.throughput.previous import Checkout
from loadtest.throughput.redis_memory import KeyCensus, key_census, used_memory
from loadtest.throughput.report import number
from loadtest.throughput.worker import run_workers
from streams.common.settings import Settings, topic_kinds

SPAN_S = 600
PILOT_VISITORS = 1_000

Row = tuple[str, bytes, bytes]
"""(topic kind, key, value)."""


@dataclass(frozen=True)
class MixedFilled:
    """The four topics filled with one run of generated shop traffic."""

    events: int
    by_kind: dict[str, int]
    visitors: int  # distinct keys on the clickstream topic, each a visitor id
    last_offsets: dict[str, dict[int, int]]  # topic -> partition -> last offset
    seconds: float

    def shares(self) -> str:
        """``clickstream 91 %, orders 3 %, ...``."""
        total = max(1, self.events)
        return ", ".join(f"{kind} {100 * n / total:.0f} %" for kind, n in self.by_kind.items())


def _traffic(events: int, seed: int, end_ms: int) -> ShopTraffic:
    """About ``events`` messages: the visitor count is scaled from a small pilot run."""
    start_ms = end_ms - SPAN_S * 1000
    pilot = generate_shop(seed, start_ms, SPAN_S, PILOT_VISITORS)
    fixed = len(pilot.messages["marketing"])  # cost reports: per minute and channel
    per_visitor = (sum(len(m) for m in pilot.messages.values()) - fixed) / PILOT_VISITORS
    visitors = max(1, round((events - fixed) / per_visitor))
    return generate_shop(seed, start_ms, SPAN_S, visitors)


def _event_ms(value: bytes) -> float:
    """Event time of a generated message (epoch ms)."""
    return datetime.fromisoformat(json.loads(value)["event_time"]).timestamp() * 1000


def in_time_order(messages: dict[str, list[tuple[bytes, bytes]]]) -> list[Row]:
    """Every kind's messages merged by event time (ties keep the generator's order)."""
    timed = [
        (_event_ms(value), kind, key, value)
        for kind in TOPIC_KINDS
        for key, value in messages.get(kind, [])
    ]
    timed.sort(key=lambda row: row[0])
    return [(kind, key, value) for _, kind, key, value in timed]


async def produce_rows(
    bootstrap: str, topics: dict[str, str], rows: Sequence[Row]
) -> tuple[dict[str, dict[int, int]], float]:
    """Send each row to ``topics[kind]`` by key; last offset per topic and partition, seconds."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=256 * 1024
    )
    await producer.start()
    started = time.perf_counter()
    last: dict[str, dict[int, int]] = {}
    pending: list[asyncio.Future[Any]] = []

    async def settle() -> None:
        for meta in await asyncio.gather(*pending):
            offsets = last.setdefault(meta.topic, {})
            offsets[meta.partition] = max(offsets.get(meta.partition, -1), meta.offset)
        pending.clear()

    try:
        for kind, key, value in rows:
            pending.append(await producer.send(topics[kind], value=value, key=key))
            if len(pending) >= 5000:
                await settle()
        await settle()
    finally:
        await producer.stop()
    return last, time.perf_counter() - started


async def fill_mixed(settings: Settings, events: int, seed: int) -> MixedFilled:
    """Generate about ``events`` shop messages and produce them to the run's four topics."""
    traffic = _traffic(events, seed, int(time.time() * 1000))
    rows = in_time_order(traffic.messages)
    topics = {kind: topic for topic, kind in topic_kinds(settings).items()}
    last, seconds = await produce_rows(settings.kafka_bootstrap, topics, rows)
    by_kind = {kind: len(traffic.messages.get(kind, [])) for kind in TOPIC_KINDS}
    visitors = len({key for key, _ in traffic.messages.get("clickstream", [])})
    return MixedFilled(len(rows), by_kind, visitors, last, seconds)


@dataclass(frozen=True)
class MixedRun:
    """The mixed workload's contenders and what its worker left in Redis."""

    filled: MixedFilled
    ceiling: Contender
    worker: Contender
    previous: Contender | None
    census: KeyCensus
    redis_delta: int


def run_mixed(run: BenchRun, events: int, seed: int, previous: Checkout | None) -> MixedRun:
    """Fill the four topics, then the ceiling, this checkout's worker and the previous one's."""
    settings = run_settings(run.base, run.run_id, "mix")
    kinds = topic_kinds(settings)
    asyncio.run(create_run_topics(settings))
    for topic in kinds:
        asyncio.run(wait_for_partitions(settings.kafka_bootstrap, topic))
    say(f"mixed: generating about {events:,} shop events for the four topics")
    filled = asyncio.run(fill_mixed(settings, events, seed))
    say(f"mixed: produced {filled.events:,} ({filled.shares()}) in {filled.seconds:.1f}s")

    say("mixed (a) ceiling: aiokafka getmany + decode, four topics")
    ceiling, _ = run_module(
        "(a) ceiling: aiokafka + decode, 4 topics",
        "loadtest.throughput.ceiling",
        [
            *("--bootstrap", settings.kafka_bootstrap, "--group", f"{run.run_id}-mix-ceiling"),
            *("--topic", ",".join(kinds), "--kinds", ",".join(kinds.values())),
            *("--events", str(filled.events)),
        ],
        run.work,
        run.timeout_s,
    )

    say("mixed (c) kpi worker")
    before = used_memory(run.client)
    worker = run_workers(
        run.client, settings, filled.last_offsets, 1, run.work, "(c) kpi worker", run.timeout_s
    )
    delta = used_memory(run.client) - before
    with Exporter(settings, run.work) as exporter:
        seen = consumed(exporter, kinds)
    census = key_census(run.client, settings.redis_prefix)
    this = replace(worker.contender, note=f"consumed {number(seen)} of {filled.events:,}")

    other = None
    if previous is not None:
        say(f"mixed (p) kpi worker at {previous.label}")
        prefix = f"{run.run_id}-mix-prev"
        other = run_workers(
            run.client,
            settings.replace(consumer_group=prefix, redis_prefix=prefix),
            filled.last_offsets,
            1,
            run.work,
            f"(p) kpi worker at {previous.label}",
            run.timeout_s,
            code=previous.path,
        ).contender
        other = replace(other, note="")
    return MixedRun(filled, ceiling, this, other, census, delta)
