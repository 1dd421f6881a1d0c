"""A corpus of bad messages between valid ones, through the live worker.

Every bad message is refused with its reason, counted per reason, and sent to
the dead-letter topic with its source offset; every valid message beside it
is counted; the worker keeps running.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from tests.integration.conftest import Pipeline
from tests.integration.kpi_compare import start_of

pytestmark = [pytest.mark.integration, pytest.mark.clock]


def corpus(now_ms: int) -> list[tuple[bytes, str]]:
    """(message, expected reason); reason "" for valid page views."""

    def view(**changes: object) -> bytes:
        doc: dict[str, object] = {
            "type": "page_view",
            "event_id": f"e{len(changes)}-{time.monotonic_ns()}",
            "event_time": now_ms - 5_000,
            "visitor_id": "v1",
            "page": "/",
            "page_type": "home",
            "channel": "search",
        }
        doc.update(changes)
        return json.dumps({k: v for k, v in doc.items() if v is not ...}).encode()

    deep = b'{"type":"page_view","payload":' + b"[" * 5_000 + b"]" * 5_000 + b"}"
    first = view()
    return [
        (first, ""),
        (first, "duplicate_event_id"),  # the same event sent again by a producer
        (b'{"type": "page_view", "event_id": ', "malformed_json"),  # truncated
        (b"\xff\xfe\x00garbage", "malformed_json"),  # invalid UTF-8
        (b"[1, 2, 3]", "not_an_object"),
        (view(visitor_id=12345), "wrong_type"),
        (view(visitor_id=...), "missing_field"),
        (view(type="page_vue"), "unknown_type"),
        (view(page="x" * 200_000), "oversize"),  # the test lowers the limit to 100 kB
        (b'{"type":"page_view","event_time":NaN}', "malformed_json"),
        (view(event_time="2026-13-45T99:00:00+08:00"), "bad_timestamp"),
        (view(event_time=now_ms + 86_400_000), "too_far_in_future"),
        (view(event_time=now_ms - 500 * 86_400_000), "too_old"),
        (view(event_time=1e400), "malformed_json"),  # json.dumps writes Infinity, not JSON
        (view(event_time=1e16), "bad_timestamp"),  # finite, but no date
        (deep, "malformed_json"),  # nesting deeper than the JSON parser accepts
        (view(), ""),
        (view(channel=["search"]), "wrong_type"),
        (view(), ""),
    ]


def test_bad_messages_are_refused_counted_and_dead_lettered(
    pipeline: Pipeline, measure: Callable[[str, str], None]
) -> None:
    now_ms = pipeline.clock.now_ms()
    messages = corpus(now_ms)
    # Kafka itself refuses messages over about 1 MiB (message.max.bytes); a lower limit
    # lets an oversize message reach the worker.
    pipeline.env["KPI_MAX_EVENT_BYTES"] = "100000"
    pipeline.create_topics()
    pipeline.start("exporter")
    worker = pipeline.start("worker")
    worker.wait_log("Worker ready")
    # One partition key: every message lands on the same partition, in this order.
    produced = pipeline.produce([(b"same-key", raw) for raw, _ in messages])
    pipeline.wait_applied(produced.last_offsets)
    assert worker.process.poll() is None, worker.tail()

    expected = Counter(reason for _, reason in messages if reason)
    scrape = pipeline.wait_scraped(produced.last_offsets)
    prom = pipeline.stack.prometheus()
    rejected = {
        s.labels["reason"]: s.value
        for s in prom.query(
            f'shop_events_rejected_total{{topic="{pipeline.topic}"}}', scrape.real_s
        )
    }
    assert rejected == {reason: float(n) for reason, n in expected.items()}
    # The valid views are 5 s old when produced: in "yesterday" when the scrape is past
    # the midnight that followed them.
    window = "day" if start_of("d", now_ms / 1000 - 5) == start_of("d", scrape.at) else "yesterday"
    pv = prom.query(f'shop_page_views{{window="{window}"}}', scrape.real_s)
    assert pv[0].value == sum(1 for _, reason in messages if not reason)

    async def dead_letters() -> list[dict[str, object]]:
        consumer = AIOKafkaConsumer(
            f"{pipeline.topic}-dead-letter",
            bootstrap_servers=pipeline.stack.kafka,
            auto_offset_reset="earliest",
            group_id=None,
            enable_auto_commit=False,
        )
        await consumer.start()
        found: list[dict[str, object]] = []
        try:
            deadline = time.monotonic() + 30
            while len(found) < sum(expected.values()) and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=1000)
                for records in batch.values():
                    found += [orjson.loads(r.value or b"{}") for r in records]
        finally:
            await consumer.stop()
        return found

    letters = asyncio.run(dead_letters())
    partition = next(iter(produced.last_offsets))
    first = produced.last_offsets[partition] - len(messages) + 1
    want = sorted((first + i, reason) for i, (_, reason) in enumerate(messages) if reason)
    got = sorted((int(str(d["offset"])), str(d["reason"])) for d in letters)
    assert got == want
    assert all(d["topic"] == pipeline.topic and d["partition"] == partition for d in letters)
    measure(
        "bad input: messages refused / dead letters / valid counted",
        f"{sum(expected.values())} / {len(letters)} / {pv[0].value:.0f}",
    )
