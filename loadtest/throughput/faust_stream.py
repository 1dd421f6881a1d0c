"""Contender (a'), Faust's own ceiling: an agent that takes batches and only decodes.

``stream.take_events(2000, within=0.5)`` as the worker's agent used to read
its topics, then the project's decoder on every event; no Redis. The gap to
the raw aiokafka ceiling (a) is what Faust's per-message stream machinery
(conductor, channel queue, stream iteration, acknowledgement) costs, which is
why the worker reads its input with one aiokafka consumer inside the Faust app
(``streams/worker/consumer.py``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import faust

from loadtest.throughput.common import (
    PARTITIONS,
    ProcessResult,
    contender_arguments,
    faust_app,
    limits,
    now_ms,
)
from streams.ingest.decoder import Decoder
from streams.ingest.events import Rejection, TopicKind


def build_app(bootstrap: str, topic: str, group: str, events: int, result: Path) -> faust.App:
    """The Faust app; it writes ``result`` once ``events`` events were decoded."""
    app = faust_app(group, bootstrap, result.parent / "faust-stream-data")
    source = app.topic(topic, key_type=bytes, value_type=bytes, partitions=PARTITIONS)
    decoder = Decoder(limits())
    counts = {"seen": 0, "rejected": 0}
    clock = {"first": 0.0}
    written: list[bool] = []

    @app.agent(source, name="decode-only")
    async def decode_only(stream: Any) -> None:
        async for batch in stream.take_events(2000, within=0.5):
            if not clock["first"]:
                clock["first"] = time.time()
            stamp = now_ms()
            for event in batch:
                decoded = decoder.decode(event.message.value, stamp, TopicKind.CLICKSTREAM)
                if isinstance(decoded, Rejection):
                    counts["rejected"] += 1
            counts["seen"] += len(batch)
            if counts["seen"] >= events and not written:
                written.append(True)
                ProcessResult(
                    counts["seen"], clock["first"], time.time(), {"rejected": counts["rejected"]}
                ).write(result)

    return app


def main(argv: list[str] | None = None) -> int:
    """Command line (the benchmark starts this as a process and stops it when done)."""
    parser = contender_arguments(__doc__)
    args = parser.parse_args(argv)
    app = build_app(args.bootstrap, args.topic, args.group, args.events, args.result)
    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
