"""``--profile``: the worker under py-spy, and a summary of its main thread.

py-spy's raw output (``--format raw``) is one line per distinct stack:
``thread (TID): NAME;outer (file.py:12);...;inner (file.py:34) COUNT``, the
thread frame present with ``--threads``. :func:`summarize` turns those lines
into the main thread's own functions (``streams/``) by inclusive share of its
samples (a frame counts once per sample however often it recurs), the frames
where most samples end (innermost), and the share whose innermost frame is a
``select`` (the event loop waiting: idle, with ``--idle``).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import redis

from loadtest.throughput.report import Table
from loadtest.throughput.worker import LastOffsets, WorkerRun, run_workers
from streams.common.settings import Settings

RATE_HZ = 200
FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")
THREAD = re.compile(r"^thread \((?P<id>[^)]*)\)(?:: (?P<name>.*))?$")


@dataclass(frozen=True)
class FrameShare:
    """One function: share of the thread's samples with it on the stack, and innermost."""

    function: str
    file: str
    inclusive: float
    own: float


@dataclass(frozen=True)
class ProfileSummary:
    """The main thread's samples, its top frames, and the share idle in ``select``."""

    thread: str
    samples: int
    idle_select: float
    frames: list[FrameShare]


def _frame(text: str) -> tuple[str, str]:
    """``Epoll.select (selectors.py:468)`` -> (``Epoll.select``, ``selectors.py``)."""
    match = FRAME.match(text)
    return (match["function"], match["file"]) if match else (text, "")


def _main_thread(threads: dict[str, list[tuple[list[str], int]]], names: dict[str, str]) -> str:
    """The thread named MainThread, else one whose stacks start at the script, else the busiest."""
    named = [t for t in threads if names.get(t) == "MainThread"]
    started = [
        t
        for t, stacks in threads.items()
        if any(s and _frame(s[0])[0] in ("<module>", "_run_module_as_main") for s, _ in stacks)
    ]
    busiest = sorted(threads, key=lambda t: -sum(n for _, n in threads[t]))
    return (named or started or busiest)[0]


def summarize(lines: Iterable[str], top: int = 15) -> ProfileSummary:
    """The main thread's top ``top`` frames by inclusive share, from raw py-spy lines.

    A thread is known by its id: py-spy names it only once Python's ``threading``
    knows it, so early samples of the same thread come without the name.
    """
    threads: dict[str, list[tuple[list[str], int]]] = defaultdict(list)
    names: dict[str, str] = {}
    for line in lines:
        stack, _, text = line.strip().rpartition(" ")
        if not stack or not text.isdigit():
            continue
        frames = stack.split(";")
        match = THREAD.match(frames[0])
        thread = "all threads"
        if match:
            frames.pop(0)
            thread = match["id"]
            if match["name"]:
                names[thread] = match["name"]
        threads[thread].append((frames, int(text)))
    if not threads:
        return ProfileSummary("none", 0, float("nan"), [])
    thread = _main_thread(threads, names)
    inclusive: Counter[tuple[str, str]] = Counter()
    own: Counter[tuple[str, str]] = Counter()
    samples = idle = 0
    for frames, count in threads[thread]:
        samples += count
        parsed = [_frame(f) for f in frames]
        for key in set(parsed):
            inclusive[key] += count
        if parsed:
            own[parsed[-1]] += count
            if parsed[-1][0].rsplit(".", 1)[-1] == "select":
                idle += count
    by_own = sorted(own, key=lambda key: (-own[key], key))[:top]
    project = [key for key in inclusive if key[1].startswith("streams/")]
    by_inclusive = sorted(project, key=lambda key: (-inclusive[key], key))[:top]
    shares = [
        FrameShare(
            function, file, inclusive[(function, file)] / samples, own[(function, file)] / samples
        )
        for function, file in dict.fromkeys([*by_inclusive, *by_own])
    ]
    label = f"{names.get(thread, 'thread')} ({thread})" if thread != "all threads" else thread
    return ProfileSummary(label, samples, idle / samples, shares)


def profile_table(summary: ProfileSummary, title: str) -> Table:
    """The summary as a table: function, inclusive and own share, file."""
    table = Table(
        f"{title}: {summary.thread}, {summary.samples:,} samples, "
        f"idle in select {100 * summary.idle_select:.1f} %",
        ["function", "inclusive", "innermost", "file"],
        code=(0, 3),
    )
    for frame in summary.frames:
        table.add(
            frame.function,
            f"{100 * frame.inclusive:.1f} %",
            f"{100 * frame.own:.1f} %",
            frame.file,
        )
    return table


def py_spy() -> str | None:
    """py-spy beside this Python (the bench extra installs it there), or on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def profile_worker(
    client: redis.Redis,
    settings: Settings,
    last_offsets: LastOffsets,
    logs: Path,
    timeout_s: float,
    spy: str,
) -> tuple[ProfileSummary, WorkerRun]:
    """One worker through the topics under ``py-spy record --pid``, summarized.

    Sampled from its first applied batch to its last: start-up and joining the group
    are not in the samples.
    """
    out = logs / f"{settings.redis_prefix}-py-spy.txt"

    def attach(pids: list[int]) -> Callable[[], None]:
        command = [spy, "record", "--idle", "--threads", "--format", "raw", "-r", str(RATE_HZ)]
        command += ["-o", str(out), "--pid", str(pids[0])]
        with (logs / "py-spy.log").open("ab") as log:
            recorder = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

        def detach() -> None:
            recorder.send_signal(signal.SIGINT)  # py-spy writes its file and exits
            try:
                recorder.wait(timeout=30)
            except subprocess.TimeoutExpired:
                recorder.kill()
                recorder.wait()

        return detach

    run = run_workers(client, settings, last_offsets, 1, logs, "profile", timeout_s, watch=attach)
    lines = out.read_text().splitlines() if out.exists() else []
    return summarize(lines), run
