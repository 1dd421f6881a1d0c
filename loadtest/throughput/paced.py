"""A producer at a fixed rate whose events carry their send time as event time.

Run as its own process by the freshness phase, so pacing does not compete with
the samplers' event loop:

    python -m loadtest.throughput.paced --bootstrap B --topic T --rate 20000 \
        --seconds 30 --result paced.json

Every 10 ms it sends what is due, one Kafka batch per partition; the
partition is a hash of the visitor, so a visitor stays on one partition as
the worker expects.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import zlib
from pathlib import Path

from aiokafka import AIOKafkaProducer

from loadtest.throughput.common import PARTITIONS, ProcessResult, now_ms
from loadtest.throughput.kafka import page_view

TICK_S = 0.01


async def run(bootstrap: str, topic: str, rate: float, seconds: float, visitors: int) -> int:
    """Send ``rate`` events per second for ``seconds``; returns how many were sent."""
    rng = random.Random(7)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks=1, linger_ms=5, max_batch_size=1024 * 1024
    )
    await producer.start()
    sent = 0
    started = time.monotonic()
    try:
        while (elapsed := time.monotonic() - started) < seconds:
            due = int(elapsed * rate) - sent
            if due > 0:
                stamp = now_ms()
                batches = {p: producer.create_batch() for p in range(PARTITIONS)}
                pending = []
                for _ in range(due):
                    visitor = f"f{rng.randrange(visitors):07d}"
                    key = visitor.encode()
                    partition = zlib.crc32(key) % PARTITIONS
                    value = page_view(visitor, stamp, rng)
                    if batches[partition].append(key=key, value=value, timestamp=None) is None:
                        pending.append(
                            producer.send_batch(batches[partition], topic, partition=partition)
                        )
                        batches[partition] = producer.create_batch()
                        batches[partition].append(key=key, value=value, timestamp=None)
                for partition, batch in batches.items():
                    if batch.record_count():
                        pending.append(producer.send_batch(batch, topic, partition=partition))
                await asyncio.gather(*pending)
                sent += due
            await asyncio.sleep(TICK_S)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


def main(argv: list[str] | None = None) -> int:
    """Command line (the freshness phase starts this as a process)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--visitors", type=int, default=200_000)
    parser.add_argument("--result", type=Path, required=True)
    args = parser.parse_args(argv)
    first = time.time()
    sent = asyncio.run(run(args.bootstrap, args.topic, args.rate, args.seconds, args.visitors))
    ProcessResult(sent, first, time.time(), {}).write(args.result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
