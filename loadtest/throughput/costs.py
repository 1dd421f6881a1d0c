"""What a worker's events cost: its process's CPU time and Redis's time running the applies.

CPU is ``utime + stime`` from ``/proc/<pid>/stat`` (every thread of the process,
in clock ticks of ``SC_CLK_TCK``); Redis's time is ``usec`` of
``cmdstat_evalsha`` in ``INFO commandstats``, which counts every client of that
Redis (the benchmark takes the lock, so normally only the worker's applies).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import redis

TICKS_PER_S = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Usage:
    """CPU seconds of some processes and Redis's EVALSHA microseconds, at one moment."""

    cpu_s: float
    evalsha_us: float

    def __sub__(self, other: Usage) -> Usage:
        """What was spent between ``other`` and this."""
        return Usage(self.cpu_s - other.cpu_s, self.evalsha_us - other.evalsha_us)

    def per_event_us(self, events: int) -> tuple[float, float]:
        """(Redis µs, CPU µs) per event; NaN for no events."""
        if events <= 0:
            return float("nan"), float("nan")
        return self.evalsha_us / events, self.cpu_s * 1e6 / events


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a live process, all its threads (seconds)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ", from field 3 on
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S


def evalsha_usec(client: redis.Redis) -> float:
    """Microseconds Redis has spent running EVALSHA since its statistics were reset."""
    stats = client.info("commandstats")
    return float(stats.get("cmdstat_evalsha", {}).get("usec", 0))


def usage(client: redis.Redis, pids: Iterable[int]) -> Usage:
    """Summed CPU time of ``pids`` (0 for one that is gone) and Redis's EVALSHA time, now."""
    cpu = 0.0
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            cpu += cpu_seconds(pid)
    return Usage(cpu, evalsha_usec(client))
