"""Prometheus history from stored buckets: OpenMetrics with timestamps, then TSDB blocks.

For every step of a past time range, the exporter's own collector is asked
what it would have answered at that moment (windows ``minute``, ``hour`` and
``day``: the minute, the hour so far, the day so far), and the answers are
written as OpenMetrics samples stamped with that moment. ``promtool tsdb
create-blocks-from openmetrics`` turns the file into blocks that Prometheus
loads from its data folder. The live exporter never emits timestamps; only
this file does.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from prometheus_client.registry import Collector

from streams.common.errors import KpiError
from streams.metrics.exporter import KpiCollector

HISTORY_WINDOWS = frozenset({"minute", "hour", "day"})


class BackfillError(KpiError):
    """promtool failed, or the output cannot be written."""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def write_openmetrics(
    collector: KpiCollector,
    start_s: int,
    end_s: int,
    step_s: int,
    out: Path,
    keep: Callable[[str], bool],
    on_step: Callable[[int, int], None] | None = None,
) -> int:
    """Write the history of [start, end) at ``step_s`` to ``out``; returns the sample count."""
    collector.only_windows = HISTORY_WINDOWS
    steps = list(range(start_s, end_s, step_s))
    samples = 0
    with tempfile.TemporaryDirectory() as tmp:
        parts: dict[str, Path] = {}
        handles: dict[str, TextIO] = {}
        try:
            for index, moment in enumerate(steps):
                collector.now_s = lambda moment=moment: float(moment)  # type: ignore[misc]
                for family in _collect(collector):
                    if family.type != "gauge" or not keep(family.name):
                        continue
                    handle = handles.get(family.name)
                    if handle is None:
                        parts[family.name] = Path(tmp) / f"{len(parts)}.om"
                        handle = handles[family.name] = parts[family.name].open("w")
                        handle.write(f"# TYPE {family.name} gauge\n")
                        handle.write(f"# HELP {family.name} {_escape(family.documentation)}\n")
                    for sample in family.samples:
                        labels = ",".join(
                            f'{k}="{_escape(v)}"' for k, v in sorted(sample.labels.items())
                        )
                        handle.write(f"{sample.name}{{{labels}}} {sample.value!r} {moment}\n")
                        samples += 1
                if on_step is not None:
                    on_step(index + 1, len(steps))
        finally:
            for handle in handles.values():
                handle.close()
        with out.open("w") as target:
            for part in parts.values():
                with part.open() as source:
                    shutil.copyfileobj(source, target)
            target.write("# EOF\n")
    return samples


def _collect(collector: Collector) -> list:  # type: ignore[type-arg]
    return list(collector.collect())


def create_blocks(openmetrics: Path, blocks: Path, promtool: str = "promtool") -> list[Path]:
    """Run promtool on the file; returns the new block folders."""
    blocks.mkdir(parents=True, exist_ok=True)
    before = set(blocks.iterdir())
    result = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(openmetrics), str(blocks)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BackfillError(f"promtool failed: {result.stderr.strip()[-2000:]}")
    return sorted(p for p in blocks.iterdir() if p not in before and p.is_dir())


_ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")


def install_blocks(blocks: list[Path], data_dir: Path) -> list[Path]:
    """Move block folders into a Prometheus data folder (it loads them on restart)."""
    if not data_dir.is_dir():
        raise BackfillError(f"not a Prometheus data folder: {data_dir}")
    moved = []
    for block in blocks:
        if not _ULID.match(block.name):
            raise BackfillError(f"not a TSDB block: {block}")
        target = data_dir / block.name
        shutil.move(str(block), target)
        moved.append(target)
    return moved
