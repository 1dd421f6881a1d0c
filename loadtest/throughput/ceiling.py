"""Contender (a), the ceiling: a raw aiokafka consumer that only fetches and decodes.

No aggregation, no Redis: what one Python process can take off Kafka through
the project's decoder (``streams.ingest.decoder``). ``--topic`` takes one topic or
several, comma-separated; ``--kinds`` gives each one's role (default: all
clickstream), so every record is decoded as its topic's kind. Writes a
:class:`ProcessResult` when ``--events`` records have been decoded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer

from loadtest.throughput.common import ProcessResult, contender_arguments, limits, now_ms
from streams.ingest.decoder import Decoder
from streams.ingest.events import Rejection, TopicKind


async def run(
    bootstrap: str, topics: Mapping[str, TopicKind], group: str, events: int
) -> ProcessResult:
    """Fetch with ``getmany``; decode as each topic's kind until ``events`` records were seen."""
    consumer = AIOKafkaConsumer(
        *topics,
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
            for partition, records in batches.items():
                kind = topics[partition.topic]
                for record in records:
                    if isinstance(decoder.decode(record.value, stamp, kind), Rejection):
                        rejected += 1
                    seen += 1
    finally:
        last = time.time()
        await consumer.stop()
    return ProcessResult(seen, first, last, {"rejected": rejected})


def main(argv: list[str] | None = None) -> int:
    """Command line (the benchmark starts this as a process)."""
    parser = contender_arguments(__doc__)
    parser.add_argument("--kinds", default="", help="each topic's kind, comma-separated")
    args = parser.parse_args(argv)
    names = args.topic.split(",")
    kinds = args.kinds.split(",") if args.kinds else ["clickstream"] * len(names)
    if len(kinds) != len(names):
        parser.error("--kinds needs one kind per topic")
    topics = {name: TopicKind(kind) for name, kind in zip(names, kinds, strict=True)}
    asyncio.run(run(args.bootstrap, topics, args.group, args.events)).write(args.result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
