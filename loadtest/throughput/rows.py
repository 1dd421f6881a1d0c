"""Rows of the throughput tables and of the figures derived from them (catch-up time)."""

from __future__ import annotations

from loadtest.throughput.common import Contender
from loadtest.throughput.report import Table, number

BACKLOG_S = 60

HEADERS = [
    "contender",
    "events timed",
    "seconds",
    "events/s",
    "ratio to ceiling",
    "ratio to previous",
    "Redis µs/event",
    "CPU µs/event",
    "note",
]


def throughput_table(title: str) -> Table:
    """An empty throughput table with the benchmark's columns."""
    return Table(title, list(HEADERS))


def add_contender(
    table: Table, contender: Contender, ceiling: Contender, previous: Contender | None = None
) -> None:
    """One contender's row; ``previous``: the previous commit's worker, for the ratio."""
    to_previous = contender.rate / previous.rate if previous and previous.rate else float("nan")
    table.add(
        contender.name,
        number(contender.events),
        number(contender.seconds, 2),
        number(contender.rate),
        number(contender.rate / ceiling.rate if ceiling.rate else float("nan"), 2),
        number(to_previous, 2),
        number(contender.redis_us, 1),
        number(contender.cpu_us, 1),
        contender.note,
    )


def catch_up_seconds(rate: float, worker_rate: float, backlog_s: float = BACKLOG_S) -> float:
    """Seconds to work off ``backlog_s`` seconds of events at ``rate`` while more arrive at it.

    The backlog is ``backlog_s * rate`` events and shrinks at ``worker_rate - rate``;
    infinite when the worker is not faster than the arrivals.
    """
    if worker_rate <= rate:
        return float("inf")
    return backlog_s * rate / (worker_rate - rate)


def catch_up_row(workload: str, rate: float, worker_rate: float) -> tuple[str, str, str]:
    """The figures row: catch-up time of a 60 s backlog at the peak rate, formula included."""
    seconds = catch_up_seconds(rate, worker_rate)
    value = "never (W ≤ R)" if seconds == float("inf") else f"{seconds:,.1f} s"
    return (
        f"catch-up of a {BACKLOG_S} s backlog, {workload}: {BACKLOG_S}·R / (W - R), "
        f"R = {number(rate)}/s (--rate), W = {number(worker_rate)}/s (kpi worker)",
        value,
        "—",
    )
