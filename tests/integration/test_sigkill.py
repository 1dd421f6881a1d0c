"""Exactly once under SIGKILL: kill the worker mid-stream, restart it, count exactly."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from loadtest.generator import Produced, generate
from loadtest.shop_generator import disorder
from tests.integration.conftest import Pipeline
from tests.integration.kpi_compare import daily_traffic_problems

pytestmark = [pytest.mark.integration, pytest.mark.chaos, pytest.mark.clock]

KILLS = 3


def test_sigkill_mid_stream_loses_and_duplicates_nothing(
    pipeline: Pipeline, measure: Callable[[str, str], None]
) -> None:
    now_ms = pipeline.clock.now_ms()
    generated = generate(60_000, now_ms - 10 * 60_000, 10 * 60, seed=7, bad_ratio=0.005)
    generated.messages[:] = disorder(generated.messages, 7, 0.2, 2 * 60_000)  # out of order
    truth = generated.truth
    total = len(generated.messages)
    pipeline.create_topics()
    pipeline.start("exporter")
    worker = pipeline.start("worker")
    worker.wait_log("Worker ready")

    produced: list[Produced] = []
    # Paced production (20 s or more) so that the kills land while events are still arriving,
    # even with restarts of about 6 s each (at ~10 s a CI run once saw the third kill
    # come after everything was applied).
    producer = threading.Thread(
        target=lambda: produced.append(pipeline.produce(generated.messages, 1500, 0.5))
    )
    producer.start()
    recoveries = []
    for kill in range(KILLS):
        target = total * (kill + 1) // (KILLS + 2)
        deadline = time.monotonic() + 120
        while sum(o + 1 for o in pipeline.applied_offsets().values()) < target:
            assert time.monotonic() < deadline, "worker made no progress"
            time.sleep(0.05)
        applied_before = sum(o + 1 for o in pipeline.applied_offsets().values())
        worker.kill()
        assert applied_before < total, "the kill came after everything was applied"
        killed_at = time.monotonic()
        worker = pipeline.start("worker")
        # Recovery: time from the kill until Redis moves past where the dead worker stopped.
        while sum(o + 1 for o in pipeline.applied_offsets().values()) <= applied_before:
            assert time.monotonic() - killed_at < 180, worker.tail()
            time.sleep(0.05)
        recoveries.append(time.monotonic() - killed_at)
        measure(f"sigkill #{kill + 1}: applied when killed", f"{applied_before:,} of {total:,}")
    producer.join(timeout=300)
    assert produced, "producer failed"
    pipeline.wait_applied(produced[0].last_offsets)
    measure("sigkill: seconds from kill to progress", ", ".join(f"{r:.1f}" for r in recoveries))

    scrape = pipeline.wait_scraped(produced[0].last_offsets)
    prom = pipeline.stack.prometheus()
    skipped = sum(
        int(line.split("skipping ")[1].split(" ")[0])
        for service in pipeline.services
        for line in service.log.read_text(errors="replace").splitlines()
        if "already applied" in line
    )
    measure("sigkill: redelivered records skipped by the offset guard", f"{skipped:,}")
    gaps = [
        s.name for s in pipeline.services if "not in Redis" in s.log.read_text(errors="replace")
    ]
    assert gaps == [], "a worker reported acknowledged offsets missing from Redis"
    assert daily_traffic_problems(prom, scrape.real_s, scrape.at, truth) == []
    consumed = prom.query(f'shop_events_consumed_total{{topic="{pipeline.topic}"}}', scrape.real_s)
    assert consumed[0].value == total
    rejected = prom.query(
        f'sum(shop_events_rejected_total{{topic="{pipeline.topic}"}})', scrape.real_s
    )
    assert rejected[0].value == sum(truth.rejected.values())
