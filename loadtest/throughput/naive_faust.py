"""Contender (b), the naive way: a plain Faust agent writing to Redis once per event.

``async for value in stream``, decode, then ``HINCRBY`` of the minute's PV and
``PFADD`` of the minute's visitors, each awaited before the next event: what
a first Faust version of these KPIs usually looks like. It keeps no offsets
in Redis, so a redelivery would count twice; it is here for speed only.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import faust
import redis.asyncio as aioredis

from loadtest.throughput.common import (
    PARTITIONS,
    ProcessResult,
    contender_arguments,
    faust_app,
    limits,
    now_ms,
)
from streams.ingest.decoder import Decoder
from streams.ingest.events import Event, TopicKind


def build_app(
    bootstrap: str, topic: str, group: str, events: int, redis_url: str, prefix: str, result: Path
) -> faust.App:
    """The Faust app; it writes ``result`` once ``events`` events were applied."""
    app = faust_app(group, bootstrap, result.parent / "naive-faust-data")
    source = app.topic(topic, key_type=bytes, value_type=bytes, partitions=PARTITIONS)
    decoder = Decoder(limits())
    client = aioredis.Redis.from_url(redis_url)
    state = {"seen": 0, "first": 0.0, "rejected": 0}

    @app.agent(source, name="naive")
    async def naive(stream: Any) -> None:
        async for value in stream:
            if not state["first"]:
                state["first"] = time.time()
            event = decoder.decode(value, now_ms(), TopicKind.CLICKSTREAM)
            if isinstance(event, Event):
                minute = event.event_ms // 60_000 * 60
                await client.hincrby(f"{prefix}:pv", str(minute), 1)
                await client.pfadd(f"{prefix}:uv:{minute}", event.text("visitor_id"))
            else:
                state["rejected"] += 1
            state["seen"] += 1
            if state["seen"] == events:
                ProcessResult(
                    events, state["first"], time.time(), {"rejected": state["rejected"]}
                ).write(result)

    return app


def main(argv: list[str] | None = None) -> int:
    """Command line (the benchmark starts this as a process and stops it when done)."""
    parser = contender_arguments(__doc__)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--prefix", required=True)
    args = parser.parse_args(argv)
    app = build_app(
        args.bootstrap,
        args.topic,
        args.group,
        args.events,
        args.redis_url,
        args.prefix,
        args.result,
    )
    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
