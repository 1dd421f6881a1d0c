"""Session-wide helpers: measured figures are printed at the end of the run."""

from __future__ import annotations

from collections.abc import Callable

import pytest

_MEASUREMENTS: list[tuple[str, str]] = []


@pytest.fixture(scope="session")
def measure() -> Callable[[str, str], None]:
    """Record a figure (name, value) for the end-of-run summary."""

    def record(name: str, value: str) -> None:
        _MEASUREMENTS.append((name, value))

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _MEASUREMENTS:
        terminalreporter.section("measurements")
        for name, value in _MEASUREMENTS:
            terminalreporter.write_line(f"{name:<55} {value}")
