"""A replay of a finished log closes what its end closes (visits, conversations)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from streams.common.settings import Settings, topic_kinds
from streams.common.timebuckets import Granularity
from streams.ingest.events import TopicKind
from streams.replay.runner import ReplayDeadLetters, ReplayReport, replay
from streams.replay.sources import SourceRecord
from streams.store.memory_sink import MemorySink
from streams.worker.pipeline import BatchProcessor
from streams.worker.runtime import aggregator, decode_limits
from tests.unit.test_dry_run import dry_run

DAY_MS = 86_400_000


def rows(newest_ms: int) -> list[dict[str, object]]:
    """Two page views of one visitor a minute apart, and an unanswered customer message."""
    view = {"type": "page_view", "visitor_id": "v1", "page_type": "home", "channel": "search"}
    return [
        {**view, "event_id": "a", "event_time": newest_ms - 60_000, "page": "/"},
        {**view, "event_id": "b", "event_time": newest_ms, "page": "/p"},
        {
            "type": "customer_message",
            "event_id": "c",
            "event_time": newest_ms,
            "conversation_id": "c1",
        },
    ]


def replayed(
    newest_ms: int, now_ms: int, ended_before_ms: int | None, sink: MemorySink | None = None
) -> tuple[dict[str, int], ReplayReport]:
    settings = Settings()
    kinds = {topic: TopicKind(kind) for topic, kind in topic_kinds(settings).items()}
    sink = MemorySink() if sink is None else sink
    report = ReplayReport()
    dead = ReplayDeadLetters(report)
    processor = BatchProcessor(
        decode_limits(settings), aggregator(settings), sink, dead, kinds, clock_ms=lambda: now_ms
    )
    records = [
        SourceRecord(
            TopicKind.CHAT if r["type"] == "customer_message" else TopicKind.CLICKSTREAM,
            json.dumps(r).encode(),
            "log.jsonl",
            n,
        )
        for n, r in enumerate(rows(newest_ms), 1)
    ]
    topics = {kind: topic for topic, kind in kinds.items()}
    asyncio.run(replay(records, processor, dead, topics, "src", 100, None, ended_before_ms))
    totals: dict[str, int] = {}
    for store in sink.shards.values():
        for (bucket, name), n in store.counters.items():
            if bucket.granularity is Granularity.MONTH:
                totals[name] = totals.get(name, 0) + n
    waits = sum(len(store.zsets.get("waits", {})) for store in sink.shards.values())
    totals["live_waits"] = waits
    return totals, report


def test_a_log_days_old_closes_its_last_visit_and_conversation() -> None:
    now_ms = int(time.time() * 1000)
    totals, report = replayed(now_ms - 3 * DAY_MS, now_ms, now_ms)
    # By hand: 1 visit of 2 views, closed: no bounce, 1 exit, 60 s; the conversation
    # ends (nobody waits any more).
    assert totals["sessions"] == 1
    assert totals["sessions_closed"] == 1
    assert totals.get("bounces", 0) == 0
    assert totals["exits"] == 1
    assert totals["session_duration_ms"] == 60_000
    assert totals["live_waits"] == 0
    assert (report.ended_visits, report.ended_conversations, report.left_open) == (1, 1, [])


def test_a_recent_log_stays_open_unless_asked() -> None:
    now_ms = int(time.time() * 1000)
    totals, report = replayed(now_ms - 3_600_000, now_ms, now_ms)
    assert totals["sessions"] == 1
    assert totals.get("sessions_closed", 0) == 0
    assert totals["live_waits"] == 1
    assert len(report.left_open) == 2
    totals, report = replayed(now_ms - 3_600_000, now_ms, None)  # --close-at-end
    assert (totals["sessions_closed"], totals["live_waits"]) == (1, 0)


def test_the_command_says_what_it_closed(tmp_path: Path) -> None:
    newest = int(time.time() * 1000) - 3 * DAY_MS
    log = tmp_path / "clickstream.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in rows(newest)[:2]) + "\n")
    result = dry_run(log)
    assert "closed at the end of the input: 1 visits, 0 conversations" in result.stderr
    assert "late (behind the watermark): 0; too late for visits and conversations: 0" in (
        result.stderr
    )


def test_the_same_replay_again_changes_nothing_its_end_included() -> None:
    now_ms = int(time.time() * 1000)
    sink = MemorySink()
    first, _ = replayed(now_ms - 3 * DAY_MS, now_ms, None, sink)
    stored = {shard: (s.applied, s.watermark_ms) for shard, s in sink.shards.items()}
    again, report = replayed(now_ms - 3 * DAY_MS, now_ms, None, sink)
    assert again == first
    assert {shard: (s.applied, s.watermark_ms) for shard, s in sink.shards.items()} == stored
    assert (report.applied, report.ended_visits, report.left_open) == (0, 0, [])
