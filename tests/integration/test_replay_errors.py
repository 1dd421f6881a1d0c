"""A replay that counts nothing says why and exits non-zero."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.clock import Clock
from tests.integration.conftest import Stack, kpi, kpi_env

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
    result = kpi(kpi_env(stack, clock), "replay", str(events), timeout_s=120)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "0 counted, 0 already applied, 3 rejected" in result.stderr
    assert "looks like epoch seconds: send milliseconds" in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("kpi replay: every record was rejected (3 too_old)")
