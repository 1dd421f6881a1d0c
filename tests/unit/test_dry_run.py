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
