"""Contender (d): Quix Streams computing per-minute PV and UV on event time.

Quix Streams keeps window state per message key, and the events are keyed by
visitor, so the natural pipeline is a tumbling one-minute window counting each
visitor's views (state in RocksDB with its changelog topic, as Quix does by
default). Each window update is one page view for that minute, and an update
whose count is 1 is a new visitor for that minute: summing those gives the
minute's exact PV and UV. Events are decoded with the project's decoder
(``streams.ingest.decoder``), like every other contender.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from loadtest.throughput.common import ProcessResult, contender_arguments, limits, now_ms
from streams.ingest.decoder import Decoder
from streams.ingest.events import Event, TopicKind

GRACE = timedelta(minutes=15)  # the generated events are in event-time order per partition


def run(bootstrap: str, topic: str, group: str, events: int, result: Path) -> None:
    """Process until ``events`` events went through the window, then write ``result``."""
    from quixstreams import Application

    app = Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        state_dir=str(result.parent / "quix-state"),
        loglevel="WARNING",
    )
    source = app.topic(topic, value_deserializer="bytes", key_deserializer="bytes")
    decoder = Decoder(limits())
    pv: Counter[int] = Counter()
    uv: Counter[int] = Counter()
    tally = {"seen": 0, "rejected": 0, "first": 0.0}

    def parse(raw: bytes) -> dict[str, int]:
        if not tally["first"]:
            tally["first"] = time.time()
        tally["seen"] += 1
        event = decoder.decode(raw, now_ms(), TopicKind.CLICKSTREAM)
        if isinstance(event, Event):
            return {"ms": event.event_ms}
        tally["rejected"] += 1
        return {"ms": -1}

    def valid(value: dict[str, int]) -> bool:
        return value["ms"] >= 0

    def event_time(value: dict[str, int], key: Any, timestamp: int, headers: Any) -> int:
        return value["ms"]

    def count(window: dict[str, Any]) -> None:
        start = int(window["start"]) // 1000
        pv[start] += 1
        if window["value"] == 1:
            uv[start] += 1
        if tally["seen"] == events:
            extra: dict[str, object] = {
                "rejected": tally["rejected"],
                "pv": sum(pv.values()),
                "uv_minutes": sum(uv.values()),
                "minutes": len(pv),
            }
            ProcessResult(events, tally["first"], time.time(), extra).write(result)
            app.stop()

    sdf = app.dataframe(source)
    sdf = sdf.apply(parse).filter(valid).set_timestamp(event_time)
    sdf = sdf.tumbling_window(timedelta(minutes=1), grace_ms=GRACE).count().current()
    sdf = sdf.update(count)
    app.run()


def main(argv: list[str] | None = None) -> int:
    """Command line (the benchmark starts this as a process)."""
    parser = contender_arguments(__doc__)
    args = parser.parse_args(argv)
    run(args.bootstrap, args.topic, args.group, args.events, args.result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
