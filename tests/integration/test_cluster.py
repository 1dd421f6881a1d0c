"""The service on a real Redis Cluster (3 masters, 3 replicas on loopback).

The all-KPI ground-truth test and the SIGKILL test run unchanged with the worker,
exporter and replay writing to the cluster; then a master is killed under load and its
replica promoted: every produced event is counted once, and the seconds until the
worker applies again are measured. Last, every clickstream partition's slot moves to
another master while the worker applies (resharding): nothing lost, nothing twice.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import redis

from loadtest.generator import Generated, Produced, generate
from streams.common.keys import KeyLayout, Shard
from tests.integration import test_all_kpis, test_sigkill
from tests.integration.conftest import Cluster, Pipeline, Service
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


@dataclass
class Load:
    """Generated traffic being produced while the worker applies it."""

    generated: Generated
    worker: Service
    producer: threading.Thread
    produced: list[Produced]

    def finish(self, pipeline: Pipeline) -> dict[int, int]:
        """Wait for the producer, then for every offset it produced to be applied."""
        self.producer.join(timeout=300)
        assert self.produced, "producer failed"
        pipeline.wait_applied(self.produced[0].last_offsets)
        return self.produced[0].last_offsets


def _under_load(pipeline: Pipeline, events: int, seed: int, pause_s: float, share: int) -> Load:
    """Exporter and worker started, ``events`` produced in the background; returns once
    1 / ``share`` of them is applied."""
    generated = generate(events, pipeline.clock.now_ms() - 10 * 60_000, 10 * 60, seed=seed)
    pipeline.create_topics()
    pipeline.start("exporter")
    worker = pipeline.start("worker")
    worker.wait_log("Worker ready")
    produced: list[Produced] = []
    producer = threading.Thread(
        target=lambda: produced.append(pipeline.produce(generated.messages, 1_000, pause_s))
    )
    producer.start()
    deadline = time.monotonic() + 120
    while sum(o + 1 for o in pipeline.applied_offsets().values()) < events // share:
        assert time.monotonic() < deadline, "worker made no progress"
        time.sleep(0.05)
    return Load(generated, worker, producer, produced)


def _counted_once(
    pipeline: Pipeline,
    load: Load,
    last: dict[int, int],
    what: str,
    measure: Callable[[str, str], None],
) -> None:
    """Every produced event counted once, as Prometheus scraped it."""
    scrape = pipeline.wait_scraped(last)
    prom = pipeline.stack.prometheus()
    assert daily_traffic_problems(prom, scrape.real_s, scrape.at, load.generated.truth) == []
    consumed = prom.query(f'shop_events_consumed_total{{topic="{pipeline.topic}"}}', scrape.real_s)
    events = len(load.generated.messages)
    measure(f"{what}: events produced / counted", f"{events:,} / {consumed[0].value:,.0f}")
    assert consumed[0].value == events


def _node_id(port: int) -> str:
    return str(redis.Redis(port=port).execute_command("CLUSTER MYID").decode())


def _owner(slot: int, ports: tuple[int, ...]) -> int:
    """The port of the master that serves ``slot`` by its own account (the highest
    configuration epoch if two claim it while a failover settles)."""
    claims = []
    for port in ports:
        try:
            nodes = redis.Redis(port=port, socket_timeout=2).execute_command("CLUSTER NODES")
        except redis.RedisError:
            continue
        for info in nodes.values():
            if "myself" in info["flags"] and "master" in info["flags"]:
                for pair in info["slots"]:
                    if int(pair[0]) <= slot <= int(pair[-1]):
                        claims.append((int(info["epoch"]), port))
    assert claims, f"no master serves slot {slot}"
    return max(claims)[1]


def _move_slot(slot: int, source: int, target: int, masters: list[int], migrate_port: int) -> int:
    """Move ``slot`` from the master on ``source`` to the one on ``target`` as
    ``redis-cli --cluster reshard`` does (IMPORTING, MIGRATING, MIGRATE in batches, NODE);
    returns the keys moved. ``migrate_port``: the target's port the nodes talk on (its
    TLS port: with ``tls-cluster`` a node migrates keys over TLS)."""
    src, dst = redis.Redis(port=source), redis.Redis(port=target)
    src_id, dst_id = _node_id(source), _node_id(target)
    dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", src_id)
    src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", dst_id)
    moved = 0
    while keys := src.execute_command("CLUSTER GETKEYSINSLOT", slot, 20):
        try:
            src.execute_command("MIGRATE", "127.0.0.1", migrate_port, "", 0, 5000, "KEYS", *keys)
        except redis.ResponseError as exc:
            raise AssertionError(
                f"{exc}: slot {slot} {source}->{target}\n"
                + str(src.execute_command("CLUSTER NODES"))
                + f"\n{keys[:3]}"
            ) from exc
        moved += len(keys)
        time.sleep(0.05)  # the worker's applies run between the batches
    for port in [target, source, *[m for m in masters if m not in (source, target)]]:
        redis.Redis(port=port).execute_command("CLUSTER SETSLOT", slot, "NODE", dst_id)
    return moved


def test_slots_moved_under_load_lose_and_duplicate_nothing(
    cluster_pipeline: Pipeline, redis_cluster: Cluster, measure: Callable[[str, str], None]
) -> None:
    pipeline = cluster_pipeline
    load = _under_load(pipeline, 20_000, seed=29, pause_s=0.3, share=4)
    client = pipeline.redis()
    layout = KeyLayout(pipeline.prefix)
    slots = [client.keyslot(layout.applied(Shard(pipeline.topic, p))) for p in range(4)]
    masters = sorted({_owner(slot, redis_cluster.ports) for slot in range(0, 16_384, 1_000)})
    moves = []
    started = time.monotonic()
    for partition, slot in enumerate(slots):
        source = _owner(slot, redis_cluster.ports)
        target = masters[(masters.index(source) + 1) % len(masters)]
        tls_port = redis_cluster.tls_ports[redis_cluster.ports.index(target)]
        moved = _move_slot(slot, source, target, masters, tls_port)
        moves.append((partition, source, target, moved))
    seconds = time.monotonic() - started
    last = load.finish(pipeline)
    for partition, _, target, keys in moves:
        assert keys > 0
        assert _owner(slots[partition], redis_cluster.ports) == target
    measure(
        "cluster resharding: slots moved under load, keys, seconds",
        f"{len(moves)}, {sum(m[3] for m in moves):,}, {seconds:.1f}",
    )
    _counted_once(pipeline, load, last, "cluster resharding", measure)
    retries = load.worker.log.read_text(errors="replace").count("retrying in")
    measure("cluster resharding: applies retried while a slot moved", str(retries))


def test_a_master_killed_under_load_loses_and_duplicates_nothing(
    cluster_pipeline: Pipeline, redis_cluster: Cluster, measure: Callable[[str, str], None]
) -> None:
    pipeline = cluster_pipeline
    load = _under_load(pipeline, 40_000, seed=23, pause_s=0.4, share=3)
    worker = load.worker
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
            pipeline.applied_offsets_or_none(partition) is None
            or (pipeline.applied_offsets_or_none(partition) or -1) <= before
        ):
            assert time.monotonic() - killed < 120, worker.tail()
            time.sleep(0.1)
        recovered = time.monotonic() - killed
        last = load.finish(pipeline)
        assert _master_of(pipeline, shard) != port, "no replica was promoted"
    finally:
        redis_cluster.up()  # the killed node comes back as a replica
    measure(
        "cluster failover: seconds from the master's kill to applying again", f"{recovered:.1f}"
    )
    _counted_once(pipeline, load, last, "cluster failover", measure)
    lost = "Redis lost writes" in worker.log.read_text(errors="replace")
    measure("cluster failover: acknowledged writes lost and read again", "yes" if lost else "no")
