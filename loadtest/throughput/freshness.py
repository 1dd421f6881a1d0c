"""Freshness at a fixed rate: event to Redis, event to Prometheus, and consumer lag.

Events carry their send time as event time. Every 100 ms the sampler reads
each partition's watermark (newest event time applied) from Redis and takes
``now - min(watermarks)``: the age of the newest event of the *stalest*
partition, i.e. how far Redis is behind the wall clock. It asks the
benchmark's Prometheus for ``min(shop_watermark_timestamp_seconds)`` the same
way, which adds the exporter, the 1 s scrape interval and the query. Every
second it reads the topic's end offsets and the applied offsets: the lag.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
import redis.asyncio as aioredis

from loadtest.throughput.common import ProcessResult, free_port, median, now_ms, percentile
from loadtest.throughput.exporter import Exporter
from loadtest.throughput.kafka import EndOffsets
from loadtest.throughput.prometheus import BenchPrometheus
from loadtest.throughput.worker import ShardReader, applied_count, start_workers, stop
from streams.common.keys import KeyLayout, Shard
from streams.common.settings import Settings

SAMPLE_S = 0.1
LAG_EVERY = 10  # samples, i.e. once a second


@dataclass
class Freshness:
    """Samples of one freshness run (seconds; lag in events)."""

    rate_target: float
    rate_sent: float = 0.0
    seconds: float = 0.0
    redis_s: list[float] = field(default_factory=list)
    prometheus_s: list[float] = field(default_factory=list)
    lag: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        """p50 and p99 of both freshness series, lag min / median / max."""
        lag = [float(x) for x in self.lag]
        return {
            "redis_p50": median(self.redis_s),
            "redis_p99": percentile(self.redis_s, 0.99),
            "prom_p50": median(self.prometheus_s),
            "prom_p99": percentile(self.prometheus_s, 0.99),
            "lag_min": min(lag, default=float("nan")),
            "lag_median": median(lag),
            "lag_max": max(lag, default=float("nan")),
        }


async def _sample(
    settings: Settings,
    prometheus: BenchPrometheus,
    producer: subprocess.Popen[bytes],
    warmup_s: float,
    result: Freshness,
) -> None:
    layout = KeyLayout(settings.redis_prefix)
    topic = settings.clickstream_topic
    shards = [Shard(topic, p) for p in range(4)]
    watermark_keys = [layout.watermark(s) for s in shards]
    applied_keys = [layout.applied(s) for s in shards]
    query = f'min(shop_watermark_timestamp_seconds{{topic="{topic}"}})'
    client = aioredis.Redis.from_url(settings.redis_url)
    started = time.monotonic()
    tick = 0
    try:
        async with EndOffsets(settings.kafka_bootstrap, topic) as ends:
            while producer.poll() is None:
                await asyncio.sleep(SAMPLE_S)
                tick += 1
                counting = time.monotonic() - started >= warmup_s
                marks = [int(m) for m in await client.mget(watermark_keys) if m is not None]
                if counting and len(marks) == len(watermark_keys):
                    result.redis_s.append((now_ms() - min(marks)) / 1000)
                newest = await asyncio.to_thread(prometheus.scalar, query)
                if counting and newest is not None:
                    result.prometheus_s.append(time.time() - newest)
                if tick % LAG_EVERY == 0:
                    end = await ends.read()
                    applied = await client.mget(applied_keys)
                    done = {p: -1 if v is None else int(v) for p, v in enumerate(applied)}
                    result.lag.append(sum(end.values()) - applied_count(done))
    finally:
        await client.aclose()


def measure(
    client: redis.Redis,
    settings: Settings,
    rate: float,
    seconds: float,
    warmup_s: float,
    work: Path,
) -> Freshness:
    """One worker, its exporter and a 1 s Prometheus; a paced producer; samplers."""
    result = Freshness(rate)
    worker_port = free_port()
    workers = start_workers(settings, 1, work, ports=[worker_port])
    try:
        with (
            Exporter(settings, work) as exporter,
            BenchPrometheus(work / "prometheus-stack", exporter.port, worker_port) as prometheus,
        ):
            _wait_worker_ready(workers[0], ShardReader(client, settings), settings, work)
            out = work / "paced.json"
            producer = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "loadtest.throughput.paced",
                    "--bootstrap",
                    settings.kafka_bootstrap,
                    "--topic",
                    settings.clickstream_topic,
                    "--rate",
                    str(rate),
                    "--seconds",
                    str(seconds + warmup_s),
                    "--result",
                    str(out),
                ]
            )
            asyncio.run(_sample(settings, prometheus, producer, warmup_s, result))
            if producer.wait() != 0:
                raise RuntimeError("the paced producer failed")
            sent = ProcessResult.read(out)
            result.seconds = sent.last - sent.first
            result.rate_sent = sent.events / result.seconds
    finally:
        stop(workers)
    return result


def _wait_worker_ready(
    worker: subprocess.Popen[bytes], reader: ShardReader, settings: Settings, work: Path
) -> None:
    """Wait until the worker has its partitions: a probe event per partition gets applied."""
    from aiokafka import AIOKafkaProducer

    async def probe() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
        await producer.start()
        try:
            for partition in range(4):
                value = (
                    b'{"schema":1,"type":"page_view","event_id":"probe-%d","event_time":%d,'
                    b'"visitor_id":"probe","page":"/","page_type":"home","channel":"direct"}'
                    % (partition, now_ms())
                )
                await producer.send_and_wait(
                    settings.clickstream_topic, value, key=b"probe", partition=partition
                )
        finally:
            await producer.stop()

    asyncio.run(probe())
    deadline = time.monotonic() + 90
    while min(reader.applied().values()) < 0:
        if worker.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the freshness worker did not start; see {work}")
        time.sleep(0.1)
