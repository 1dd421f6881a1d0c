"""The integration tests' clock: where ``TEST_CLOCK_AT`` places it, and that the processes a
test starts agree with it."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime

import pytest

from tests.integration.clock import ZONE, Clock, ClockSpecError, latest_instant, placed
from tests.integration.conftest import Stack


def shanghai(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZONE).timestamp()


# Pure arithmetic on fixed instants: no service judges these dates.
@pytest.mark.parametrize(
    ("spec", "before", "expected"),
    [
        ("23:59:55", "2026-11-30 16:00:00", "2026-11-29 23:59:55"),  # today's is still ahead
        ("23:59:55", "2026-12-01 00:00:01", "2026-11-30 23:59:55"),
        ("10:03:20", "2026-11-30 10:03:20", "2026-11-30 10:03:20"),  # at: that instant
        ("59:55", "2026-11-30 16:00:00", "2026-11-30 15:59:55"),
        ("59:55", "2026-11-30 16:59:57", "2026-11-30 16:59:55"),
        ("00:00", "2026-03-01 00:00:00.5", "2026-03-01 00:00:00"),
        ("23:59:55", "2026-03-01 12:00:00", "2026-02-28 23:59:55"),  # across a month's end
    ],
)
def test_latest_instant(spec: str, before: str, expected: str) -> None:
    assert latest_instant(spec, shanghai(before)) == shanghai(expected)


@pytest.mark.parametrize("spec", ["24:00:00", "12:60", "1:2:3:4", "noon", "", "10:03:61"])
def test_a_bad_spec_is_refused(spec: str) -> None:
    with pytest.raises(ClockSpecError, match="TEST_CLOCK_AT"):
        latest_instant(spec, 0.0)


def test_placing_shifts_by_whole_seconds_into_the_past() -> None:
    real = shanghai("2026-11-30 16:00:00.25")
    assert placed({}, real) == Clock(0)
    midnight = placed({"TEST_CLOCK_AT": "23:59:55"}, real)
    assert midnight.offset_s == -(16 * 3600 + 5)
    assert placed({"TEST_CLOCK_AT": "59:55"}, real).offset_s == -5
    assert Clock(0).env("/p") == {"PYTHONPATH": "/p"}


@pytest.mark.integration
def test_a_started_process_runs_on_the_test_clock(stack: Stack) -> None:
    """The clock shim moves a child's wall clock, not its timers."""
    assert stack.started_in_s >= 0
    clock = Clock(-5000)
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "import time, datetime; m = time.monotonic(); time.sleep(0.2);"
            " print(time.time(), datetime.datetime.now().timestamp(), time.monotonic() - m)",
        ],
        env={"PATH": "/usr/bin:/bin", **clock.env(pythonpath="")},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    child_now, child_datetime, slept = (float(x) for x in child.stdout.split())
    assert abs(child_now - clock.now()) < 2.0
    assert abs(child_datetime - clock.now()) < 2.0
    assert 0.19 < slept < 2.0
