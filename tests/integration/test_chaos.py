"""Faults under generated load: a Kafka restart, a Redis restart, a rebalance to two workers.

Afterwards every page view is counted exactly once (per channel, against the
generator's ground truth, read back through PromQL), and the time from the
fault to renewed progress is measured.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Callable

import pytest

from loadtest.generator import Generated, Produced, generate
from loadtest.shop_generator import disorder
from tests.integration.conftest import Pipeline
from tests.integration.kpi_compare import business_days, daily_traffic_problems

pytestmark = [pytest.mark.integration, pytest.mark.chaos, pytest.mark.clock]

EVENTS = 60_000


def traffic(now_ms: int) -> Generated:
    """Ten minutes of page views, a fifth of them delivered up to two minutes late."""
    generated = generate(EVENTS, now_ms - 10 * 60_000, 10 * 60, seed=13, bad_ratio=0.005)
    generated.messages[:] = disorder(generated.messages, 13, 0.2, 2 * 60_000)
    return generated


def applied(pipeline: Pipeline) -> int:
    return sum(o + 1 for o in pipeline.applied_offsets().values())


def run_with_fault(
    pipeline: Pipeline,
    fault: Callable[[], None],
    name: str,
    measure: Callable[[str, str], None],
) -> None:
    generated = traffic(pipeline.clock.now_ms())
    total = len(generated.messages)
    pipeline.create_topics()
    pipeline.start("exporter")
    pipeline.start("worker").wait_log("Worker ready")
    produced: list[Produced] = []
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            produced.append(pipeline.produce(generated.messages, 3000, 0.5))
        except BaseException as exc:
            errors.append(exc)

    producer = threading.Thread(target=produce)
    producer.start()
    deadline = time.monotonic() + 120
    while applied(pipeline) < total // 4:
        assert time.monotonic() < deadline, "no progress before the fault"
        time.sleep(0.05)
    before = applied(pipeline)
    started = time.monotonic()
    fault()
    while applied(pipeline) <= before:
        assert time.monotonic() - started < 240, "no progress after the fault"
        time.sleep(0.05)
    recovery = time.monotonic() - started
    producer.join(timeout=300)
    assert not errors and produced, f"producer failed: {errors}"
    pipeline.wait_applied(produced[0].last_offsets, timeout_s=300)
    scrape = pipeline.wait_scraped(produced[0].last_offsets)
    prom = pipeline.stack.prometheus()
    days = business_days(scrape.at).values()
    pv = prom.query('sum(shop_page_views{window=~"day|yesterday"})', scrape.real_s)
    consumed = prom.query(
        f'sum(shop_events_consumed_total{{topic="{pipeline.topic}"}})', scrape.real_s
    )
    counted = pv[0].value if pv else 0.0
    expected = sum(generated.truth.pv("d", day) for day in days)
    measure(
        f"chaos {name}: produced / counted / duplicates / recovery s",
        f"{expected:,.0f} / {counted:,.0f} / {consumed[0].value - total:+,.0f} / {recovery:.1f}",
    )
    assert daily_traffic_problems(prom, scrape.real_s, scrape.at, generated.truth) == []
    assert consumed[0].value == total


def worker_gauge(pipeline: Pipeline, name: str) -> str:
    """A gauge of the worker's own metrics endpoint."""
    port = pipeline.env["KPI_WORKER_METRICS_PORT"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith(name + " "):
                return line.split()[1]
    return "missing"


def wait_gauge(pipeline: Pipeline, name: str, value: str, what: str) -> None:
    deadline = time.monotonic() + 40
    while worker_gauge(pipeline, name) != value:
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_kafka_broker_restart(pipeline: Pipeline, measure: Callable[[str, str], None]) -> None:
    def restart() -> None:
        pipeline.stack.run_stack("down", "kafka")
        wait_gauge(pipeline, "shop_worker_healthy", "0.0", "worker never reported Kafka down")
        pipeline.stack.run_stack("up", "kafka")

    run_with_fault(pipeline, restart, "Kafka restart", measure)
    wait_gauge(pipeline, "shop_worker_healthy", "1.0", "worker never healthy again")


def test_redis_restart_with_append_only_file(
    pipeline: Pipeline, measure: Callable[[str, str], None]
) -> None:
    port = pipeline.env["KPI_WORKER_METRICS_PORT"]
    health: list[str] = []

    def worker_healthy() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            for line in reply.read().decode().splitlines():
                if line.startswith("shop_worker_healthy "):
                    return line.split()[1]
        return "missing"

    def restart() -> None:
        pipeline.stack.run_stack("down", "redis")
        deadline = time.monotonic() + 30
        while worker_healthy() != "0.0":  # the worker notices and keeps retrying
            assert time.monotonic() < deadline, "the worker never reported itself unhealthy"
            time.sleep(0.2)
        health.append("unhealthy while Redis was down")
        pipeline.stack.run_stack("up", "redis")

    run_with_fault(pipeline, restart, "Redis restart", measure)
    assert health and worker_healthy() == "1.0"


def test_second_worker_forces_a_rebalance(
    pipeline: Pipeline, measure: Callable[[str, str], None]
) -> None:
    def join() -> None:
        env = dict(pipeline.env)
        pipeline.env["KPI_WORKER_METRICS_PORT"] = "0"
        pipeline.start("worker")
        pipeline.env.clear()
        pipeline.env.update(env)

    run_with_fault(pipeline, join, "rebalance to two workers", measure)
