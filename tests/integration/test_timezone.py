"""A business time zone changed between runs on the same data: refused at start, naming both."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.clock import Clock
from tests.integration.conftest import Stack, kpi, kpi_env, run_kpi

pytestmark = pytest.mark.integration


def test_a_changed_time_zone_is_refused(stack: Stack, clock: Clock, tmp_path: Path) -> None:
    events = tmp_path / "clickstream.jsonl"
    event = {
        "schema": 1,
        "type": "page_view",
        "event_id": "e-1",
        "event_time": clock.now_ms() - 60_000,
        "visitor_id": "v-1",
        "session_id": "s-1",
        "page": "/",
        "page_type": "home",
        "channel": "search",
    }
    events.write_text(json.dumps(event) + "\n")
    env = kpi_env(stack, clock)
    run_kpi(env, "replay", str(events))
    for command in (["replay", str(events), "--source-id", "again"], ["exporter"]):
        moved = dict(env, KPI_BUSINESS_TIMEZONE="Europe/Berlin")
        result = kpi(moved, *command, timeout_s=60)
        assert result.returncode == 2, result.stderr[-2000:]
        (line,) = result.stderr.strip().splitlines()
        assert "KPI_BUSINESS_TIMEZONE=Europe/Berlin" in line and "Asia/Shanghai" in line
    run_kpi(env, "replay", str(events), "--source-id", "same-zone")
