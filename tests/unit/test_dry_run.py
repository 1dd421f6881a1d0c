"""``kpi replay --dry-run`` goes through the run's processor, duplicate check included."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path


def dry_run(log: Path) -> subprocess.CompletedProcess[str]:
    """``kpi replay --dry-run LOG`` in a new process; fails the test if it exits non-zero."""
    return subprocess.run(
        [sys.executable, "-m", "streams", "replay", "--dry-run", str(log)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )


def test_a_row_sent_twice_counts_once_in_a_dry_run(tmp_path: Path) -> None:
    # The dry run judges event times by its own clock: the rows are an hour old.
    row = {
        "type": "page_view",
        "event_id": "same-id",
        "event_time": int(time.time() * 1000) - 3_600_000,
        "visitor_id": "v1",
        "page": "/",
        "page_type": "home",
        "channel": "search",
    }
    other = {**row, "event_id": "another-id", "visitor_id": "v2"}
    log = tmp_path / "clickstream.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in (row, row, other)) + "\n")
    result = dry_run(log)
    days = [line.split() for line in result.stdout.splitlines() if line[:2] == "20"]
    pv = sum(int(cells[1].replace(",", "")) for cells in days)
    assert pv == 2, result.stdout
    assert "rejected duplicate_event_id: 1" in result.stderr


def test_a_dry_run_of_a_chat_log_shows_its_figures(tmp_path: Path) -> None:
    # Two conversations an hour ago: one answered by an agent 12 s after the customer
    # wrote, one not answered. Hand-counted: 2 conversations, 2 customer messages,
    # 1 response, 12.0 s to the first response.
    t = int(time.time() * 1000) - 3_600_000
    rows = [
        {"type": "customer_message", "event_id": "m1", "event_time": t, "conversation_id": "c1"},
        {
            "type": "agent_message",
            "event_id": "m2",
            "event_time": t + 12_000,
            "conversation_id": "c1",
            "agent_id": "a1",
        },
        {"type": "customer_message", "event_id": "m3", "event_time": t, "conversation_id": "c2"},
    ]
    log = tmp_path / "chat.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = dry_run(log)
    assert "conversations" in result.stdout, result.stdout
    (day,) = [line.split() for line in result.stdout.splitlines()[4:] if line[:2] == "20"]
    assert day[1:5] == ["2", "2", "1", "100.0%"], result.stdout
    assert day[5] == "12.0", result.stdout
