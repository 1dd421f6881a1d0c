"""The service on a real Redis Cluster (3 masters, 3 replicas on loopback).

The all-KPI ground-truth test and the SIGKILL test run unchanged with the worker,
exporter and replay writing to the cluster; then a master is killed under load and its
replica promoted: every produced event is counted once, and the seconds until the
worker applies again are measured.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable

import pytest

from loadtest.generator import Produced, generate
from streams.common.keys import KeyLayout, Shard
from tests.integration import test_all_kpis, test_sigkill
from tests.integration.conftest import Cluster, Pipeline
from tests.integration.kpi_compare import daily_traffic_problems

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


def test_every_kpi_matches_the_ground_truth_on_the_cluster(
    cluster_pipeline: Pipeline, measure: Callable[[str, str], None]
) -> None:
    test_all_kpis.test_every_kpi_matches_the_ground_truth(cluster_pipeline, measure)


def test_sigkill_loses_and_duplicates_nothing_on_the_cluster(
    cluster_pipeline: Pipeline, measure: Callable[[str, str], None]
) -> None:
    test_sigkill.test_sigkill_mid_stream_loses_and_duplicates_nothing(cluster_pipeline, measure)


def _master_of(pipeline: Pipeline, shard: Shard) -> int:
    """The port of the master serving ``shard``'s slot."""
    client = pipeline.redis()
    slot = client.keyslot(KeyLayout(pipeline.prefix).applied(shard))
    for (start, end), nodes in client.execute_command("CLUSTER SLOTS").items():
        if start <= slot <= end:
            return int(nodes["primary"][1])
    raise AssertionError(f"no node serves slot {slot}")


def test_a_master_killed_under_load_loses_and_duplicates_nothing(
    cluster_pipeline: Pipeline, redis_cluster: Cluster, measure: Callable[[str, str], None]
) -> None:
    pipeline = cluster_pipeline
    now_ms = pipeline.clock.now_ms()
    generated = generate(40_000, now_ms - 10 * 60_000, 10 * 60, seed=23)
    messages, truth = generated.messages, generated.truth
    pipeline.create_topics()
    pipeline.start("exporter")
    worker = pipeline.start("worker")
    worker.wait_log("Worker ready")
    produced: list[Produced] = []
    producer = threading.Thread(
        target=lambda: produced.append(pipeline.produce(messages, 1_000, 0.4))
    )
    producer.start()
    deadline = time.monotonic() + 120
    while sum(o + 1 for o in pipeline.applied_offsets().values()) < len(messages) // 3:
        assert time.monotonic() < deadline, "worker made no progress"
        time.sleep(0.05)
    # The master of a clickstream partition; the first node of the address if it is one
    # (the node clients would otherwise have started from).
    masters = {p: _master_of(pipeline, Shard(pipeline.topic, p)) for p in range(4)}
    partition = next((p for p, m in masters.items() if m == redis_cluster.ports[0]), 0)
    shard, port = Shard(pipeline.topic, partition), masters[partition]
    before = pipeline.applied_offsets().get(partition, -1)
    os.kill(redis_cluster.pid(port), signal.SIGKILL)
    killed = time.monotonic()
    try:
        while (
            pipeline.applied_offsets_or_none(0) is None
            or (pipeline.applied_offsets_or_none(0) or -1) <= before
        ):
            assert time.monotonic() - killed < 120, worker.tail()
            time.sleep(0.1)
        recovered = time.monotonic() - killed
        producer.join(timeout=300)
        assert produced, "producer failed"
        pipeline.wait_applied(produced[0].last_offsets)
        assert _master_of(pipeline, shard) != port, "no replica was promoted"
    finally:
        redis_cluster.up()  # the killed node comes back as a replica
    measure(
        "cluster failover: seconds from the master's kill to applying again", f"{recovered:.1f}"
    )
    scrape = pipeline.wait_scraped(produced[0].last_offsets)
    prom = pipeline.stack.prometheus()
    assert daily_traffic_problems(prom, scrape.real_s, scrape.at, truth) == []
    consumed = prom.query(f'shop_events_consumed_total{{topic="{pipeline.topic}"}}', scrape.real_s)
    measure(
        "cluster failover: events produced / counted",
        f"{len(messages):,} / {consumed[0].value:,.0f}",
    )
    assert consumed[0].value == len(messages)
    lost = "Redis lost writes" in worker.log.read_text(errors="replace")
    measure("cluster failover: acknowledged writes lost and read again", "yes" if lost else "no")
