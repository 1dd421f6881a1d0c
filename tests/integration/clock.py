"""The integration tests' one clock: the real one, or placed at a chosen moment of the day.

Every integration test takes "now" from a :class:`Clock`, never from ``time.time()``:
the events it writes, the windows it reads and the moment it hands to an in-process
collector or batch processor.

``TEST_CLOCK_AT`` places that "now", at the start of each test, on the most recent
instant with the given time in the business time zone (Asia/Shanghai, the services'
default): ``HH:MM:SS`` for a time of day (``23:59:55``: just before midnight), ``MM:SS``
for a minute and second of the hour (``59:55``: just before an hour edge). The most
recent one is today's, or yesterday's while today's is still ahead: a placed clock is
never in the future, so no event a test writes is refused as coming from the future,
and every event stays inside every retention (the clock is at most a day behind).
From there the clock runs with the real one: a test placed at 23:59:55 writes its
events before midnight and reads its figures after it. Unset, the clock is the real one.

Kafka, Redis and Prometheus keep their real clocks: Redis judges expiries, Kafka stamps
records and Prometheus stamps scrapes by real time (:meth:`Clock.from_real` turns a
scrape's timestamp into the clock's time). The project's own processes that a test starts
(worker, exporter, ``kpi`` commands) run on the test clock (:meth:`Clock.env`), because
they and the test must agree on what "today" is: ``clock_shim/sitecustomize.py`` shifts
their wall clock with time-machine at start-up. (libfaketime, tried first, broke
``time.sleep`` with EINVAL when it left the monotonic clock alone, and hung
``threading.Event.wait`` when it shifted it.)
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ZONE = ZoneInfo("Asia/Shanghai")
VARIABLE = "TEST_CLOCK_AT"
OFFSET_VARIABLE = "TEST_CLOCK_OFFSET_SECONDS"  # read by clock_shim/sitecustomize.py
SHIM = Path(__file__).resolve().parent / "clock_shim"
_SPEC = re.compile(r"^(?:(\d{1,2}):)?(\d{1,2}):(\d{1,2})$")


class ClockSpecError(ValueError):
    """``TEST_CLOCK_AT`` is not ``HH:MM:SS`` or ``MM:SS``."""


@dataclass(frozen=True)
class Clock:
    """Real time shifted by a whole number of seconds (0 for the real clock).

    Whole seconds, so that the processes a test starts are shifted by exactly as much.
    """

    offset_s: int = 0

    def now(self) -> float:
        """Seconds since the epoch on this clock."""
        return time.time() + self.offset_s

    def now_ms(self) -> int:
        """Milliseconds since the epoch on this clock."""
        return int(self.now() * 1000)

    def real_now(self) -> float:
        """Now on the services' own clocks: the "now" of a Prometheus query, say."""
        return time.time()

    def from_real(self, real_s: float) -> float:
        """A real instant (a Prometheus sample's timestamp, say) in this clock's time."""
        return real_s + self.offset_s

    def moved_to(self, instant_s: float) -> Clock:
        """This clock moved so that :meth:`now` is ``instant_s`` (to the second)."""
        return Clock(self.offset_s + round(instant_s - self.now()))

    def latest(self, time_of_day: str) -> float:
        """The most recent instant, at or before :meth:`now`, at business time ``HH:MM:SS``."""
        return latest_instant(time_of_day, self.now())

    def env(self, pythonpath: str) -> dict[str, str]:
        """Environment variables that put a Python child process on this clock, given the
        ``PYTHONPATH`` it would have otherwise."""
        if self.offset_s == 0:
            return {"PYTHONPATH": pythonpath}
        return {
            "PYTHONPATH": os.pathsep.join(p for p in (str(SHIM), pythonpath) if p),
            OFFSET_VARIABLE: str(self.offset_s),
        }


def latest_instant(spec: str, before_s: float, zone: ZoneInfo = ZONE) -> float:
    """The most recent instant at or before ``before_s`` whose time in ``zone`` matches ``spec``.

    ``spec`` is ``HH:MM:SS`` (a time of day) or ``MM:SS`` (a minute and second of any
    hour). Raises :class:`ClockSpecError` for anything else.
    """
    match = _SPEC.match(spec.strip())
    if match is None:
        raise ClockSpecError(f"{VARIABLE}={spec!r}: expected HH:MM:SS or MM:SS")
    hour_text, minute, second = match.group(1), int(match.group(2)), int(match.group(3))
    hour = None if hour_text is None else int(hour_text)
    if (hour is not None and hour > 23) or minute > 59 or second > 59:
        raise ClockSpecError(f"{VARIABLE}={spec!r}: not a time of day")
    local = datetime.fromtimestamp(before_s, zone)
    if hour is None:
        step = timedelta(hours=1)
        candidate = local.replace(minute=minute, second=second, microsecond=0)
    else:
        step = timedelta(days=1)
        candidate = local.replace(hour=hour, minute=minute, second=second, microsecond=0)
    while candidate.timestamp() > before_s:
        # Wall-clock arithmetic, then back through the zone: right across DST changes.
        candidate = (candidate.replace(tzinfo=None) - step).replace(tzinfo=zone)
    return candidate.timestamp()


def placed(environ: dict[str, str] | None = None, real_s: float | None = None) -> Clock:
    """The clock ``TEST_CLOCK_AT`` asks for, placed now (the real clock when it is unset)."""
    spec = (os.environ if environ is None else environ).get(VARIABLE, "").strip()
    if not spec:
        return Clock()
    real = time.time() if real_s is None else real_s
    return Clock(round(latest_instant(spec, real) - real))
