"""Prometheus history from stored buckets: OpenMetrics with timestamps, then TSDB blocks.

For every step of a past time range, the store's reader reads the windows as they
stood at that moment (``minute``, ``hour`` and ``day``: the minute, the hour so far,
the day so far, summed from finer buckets up to the moment's minute while those are
kept: :func:`~streams.metrics.windows.windows_as_of`), the exporter's family builder
turns them into families, and the answers are written as OpenMetrics samples stamped
with that moment. ``promtool tsdb
create-blocks-from openmetrics`` turns the file into blocks that Prometheus
loads from its data folder. The live exporter never emits timestamps; only
this file does.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from prometheus_client.core import Metric

from streams.common.errors import KpiError
from streams.common.timebuckets import Bucket, BucketClock
from streams.metrics.families import FamilyBuilder
from streams.metrics.windows import Precision, windows_as_of
from streams.store.reader import StoreReader


class BackfillError(KpiError):
    """promtool failed, or the output cannot be written."""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


@dataclass(frozen=True)
class History:
    """Figures of past moments: the reader, the families, and which buckets are kept."""

    reader: StoreReader
    builder: FamilyBuilder
    clock: BucketClock
    kept: Callable[[Bucket], bool]
    """Whether the store still holds a bucket (its end plus retention lies ahead)."""

    def families_as_of(self, moment_s: float) -> tuple[list[Metric], Precision]:
        """The window-bound families as they stood at ``moment_s``, and their precision."""
        windows, precision = windows_as_of(self.clock, moment_s, self.kept)
        return self.builder.families(self.reader.read(moment_s, windows)), precision


def write_openmetrics(
    history: History,
    start_s: int,
    end_s: int,
    step_s: int,
    out: Path,
    keep: Callable[[str], bool],
    on_step: Callable[[int, int], None] | None = None,
) -> tuple[int, Counter[Precision]]:
    """Write the history of [start, end) at ``step_s`` to ``out``.

    Returns the sample count and the number of steps per :class:`Precision`.
    """
    steps = list(range(start_s, end_s, step_s))
    samples = 0
    precisions: Counter[Precision] = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        parts: dict[str, Path] = {}
        handles: dict[str, TextIO] = {}
        try:
            for index, moment in enumerate(steps):
                families, precision = history.families_as_of(float(moment))
                precisions[precision] += 1
                for family in families:
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
    return samples, precisions


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
