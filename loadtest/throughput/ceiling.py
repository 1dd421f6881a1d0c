"""Contender (a), the ceiling: a raw aiokafka consumer that only fetches and decodes.

No aggregation, no Redis: what one Python process can take off Kafka through
the project's decoder (``streams.decoder``). Writes a :class:`ProcessResult`
when ``--events`` records have been decoded.
"""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer

from loadtest.throughput.common import ProcessResult, contender_arguments, limits, now_ms
from streams.decoder import Decoder
from streams.events import Rejection, TopicKind


async def run(bootstrap: str, topic: str, group: str, events: int) -> ProcessResult:
    """Fetch with ``getmany`` and decode until ``events`` records were seen."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=16 * 1024 * 1024,
    )
    decoder = Decoder(limits())
    await consumer.start()
    seen = rejected = 0
    first = 0.0
    try:
        while seen < events:
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            if not batches:
                continue
            if not first:
                first = time.time()
            stamp = now_ms()
            for records in batches.values():
                for record in records:
                    if isinstance(
                        decoder.decode(record.value, stamp, TopicKind.CLICKSTREAM), Rejection
                    ):
                        rejected += 1
                    seen += 1
    finally:
        last = time.time()
        await consumer.stop()
    return ProcessResult(seen, first, last, {"rejected": rejected})


def main(argv: list[str] | None = None) -> int:
    """Command line (the benchmark starts this as a process)."""
    parser = contender_arguments(__doc__)
    args = parser.parse_args(argv)
    asyncio.run(run(args.bootstrap, args.topic, args.group, args.events)).write(args.result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
