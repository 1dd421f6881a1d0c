"""Redis loses acknowledged writes; the worker reads them again from Kafka, exactly once.

Deterministic loss: the test snapshots every key of its prefix (``DUMP``) after a first
part of the traffic is applied, lets the worker apply and commit a second part, kills
the worker and puts the snapshot back, as a Redis restarted after a hard crash with
``appendfsync everysec`` (or an asynchronous replica promoted) would stand. Kafka's
committed offsets are past the second part; Redis's are not. A third part then arrives
and the restarted worker must count all three, each event once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis

from loadtest.generator import generate
from tests.integration.conftest import Pipeline
from tests.integration.kpi_compare import daily_traffic_problems

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


def _merged(*parts: dict[int, int]) -> dict[int, int]:
    out: dict[int, int] = {}
    for part in parts:
        for partition, offset in part.items():
            out[partition] = max(offset, out.get(partition, -1))
    return out


def test_writes_redis_lost_are_read_again_from_kafka(
    pipeline: Pipeline, measure: Callable[[str, str], None]
) -> None:
    now_ms = pipeline.clock.now_ms()
    generated = generate(30_000, now_ms - 10 * 60_000, 10 * 60, seed=19)
    messages, truth = generated.messages, generated.truth
    first, second = len(messages) * 2 // 5, len(messages) * 4 // 5
    pipeline.create_topics()
    pipeline.start("exporter")
    worker = pipeline.start("worker")
    worker.wait_log("Worker ready")

    one = pipeline.produce(messages[:first])
    pipeline.wait_applied(one.last_offsets)
    client = redis.Redis.from_url(pipeline.stack.redis_url)
    keys = list(client.scan_iter(f"{pipeline.prefix}:*", count=10_000))
    snapshot = {key: (client.dump(key), client.pttl(key)) for key in keys}
    applied_at_snapshot = pipeline.applied_offsets()

    two = pipeline.produce(messages[first:second])
    pipeline.wait_applied(_merged(one.last_offsets, two.last_offsets))
    time.sleep(1)  # the worker commits the fetch to Kafka after its applies
    worker.kill()
    for key in client.scan_iter(f"{pipeline.prefix}:*", count=10_000):
        client.delete(key)
    for key, (dumped, ttl) in snapshot.items():
        assert isinstance(dumped, bytes)
        client.restore(key, max(0, int(ttl)), dumped, replace=True)
    assert pipeline.applied_offsets() == applied_at_snapshot  # Redis "lost" part two

    restarted = time.monotonic()
    worker = pipeline.start("worker")
    three = pipeline.produce(messages[second:])
    last = _merged(one.last_offsets, two.last_offsets, three.last_offsets)
    pipeline.wait_applied(last)
    measure(
        "lost writes: seconds from restart to all applied", f"{time.monotonic() - restarted:.1f}"
    )
    log = worker.log.read_text(errors="replace")
    assert "Redis lost writes" in log and "reading again from offset" in log, worker.tail()

    scrape = pipeline.wait_scraped(last)
    prom = pipeline.stack.prometheus()
    assert daily_traffic_problems(prom, scrape.real_s, scrape.at, truth) == []
    consumed = prom.query(f'shop_events_consumed_total{{topic="{pipeline.topic}"}}', scrape.real_s)
    assert consumed[0].value == len(messages)
    measure(
        "lost writes: events produced / counted", f"{len(messages):,} / {consumed[0].value:,.0f}"
    )
