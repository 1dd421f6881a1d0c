"""Puts a process started by an integration test on the test clock (tests/integration/clock.py).

Python imports ``sitecustomize`` at start-up from the first folder on its path that holds
one; the tests put this folder first on ``PYTHONPATH`` of the processes they start, with
``TEST_CLOCK_OFFSET_SECONDS``. time-machine then shifts every wall-clock reading (``time.time``,
``time.time_ns``, ``datetime.now`` ...) by that many seconds and lets it tick; monotonic
clocks, sleeps and timeouts stay real.
"""

from __future__ import annotations

import os
import time

_OFFSET = os.environ.get("TEST_CLOCK_OFFSET_SECONDS", "")

if _OFFSET:
    import time_machine

    time_machine.travel(time.time() + int(_OFFSET), tick=True).start()
