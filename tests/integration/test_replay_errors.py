"""A replay that counts nothing says why and exits non-zero."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.clock import Clock
from tests.integration.conftest import ROOT, Stack, kpi_env

pytestmark = pytest.mark.integration


def test_events_in_epoch_seconds_are_all_rejected_with_the_reason(
    stack: Stack, clock: Clock, tmp_path: Path
) -> None:
    lines = [
        json.dumps(
            {
                "schema": 1,
                "type": "page_view",
                "event_id": f"e-{i}",
                "event_time": clock.now_ms() // 1000 - 60 * i,  # seconds, not milliseconds
                "visitor_id": f"v-{i}",
                "session_id": f"s-{i}",
                "page": "/",
                "page_type": "home",
                "channel": "search",
            }
        )
        for i in range(3)
    ]
    events = tmp_path / "clickstream.jsonl"
    events.write_text("\n".join(lines) + "\n")
    result = subprocess.run(
        [sys.executable, "-m", "streams", "replay", str(events)],
        env=kpi_env(stack, clock),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "0 counted, 0 already applied, 3 rejected" in result.stderr
    assert "looks like epoch seconds: send milliseconds" in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("kpi replay: every record was rejected (3 too_old)")
