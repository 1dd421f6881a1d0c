"""Runs a contender module as its own process and collects its result file."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from loadtest.throughput.common import Contender, ProcessResult
from loadtest.throughput.worker import stop


def run_module(
    name: str, module: str, args: list[str], work: Path, timeout_s: float
) -> tuple[Contender, ProcessResult]:
    """Start ``python -m module args --result FILE``; wait for FILE, then stop the process.

    Faust never exits by itself, so the process is stopped once its result is
    written; the time it takes to shut down is not measured.
    """
    result = work / f"{module.rsplit('.', 1)[-1]}.json"
    log = work / f"{module.rsplit('.', 1)[-1]}.log"
    result.unlink(missing_ok=True)  # an earlier run of the same module wrote one
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", module, *args, "--result", str(result)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    started = time.monotonic()
    try:
        while not result.exists():
            if process.poll() is not None and not result.exists():
                raise RuntimeError(f"{name} exited with {process.returncode}; see {log}")
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"{name}: no result after {timeout_s:.0f}s; see {log}")
            time.sleep(0.05)
    finally:
        stop([process])
    done = ProcessResult.read(result)
    return Contender(name, done.events, done.last - done.first), done
