"""What every part of the benchmark shares: the run's names, results files, statistics."""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import faust
import redis

from streams.common.settings import Settings
from streams.ingest.events import DecodeLimits
from streams.worker.runtime import decode_limits

PARTITIONS = 4


def say(text: str) -> None:
    """Progress on stderr, so stdout keeps only the tables."""
    print(f"[bench] {text}", file=sys.stderr, flush=True)


class BenchRun(NamedTuple):
    """What a benchmark run starts with.

    Settings from ``KPI_`` variables, a run id (prefix of its topics and Redis keys), a
    folder for its logs, a Redis client and a time-out.
    """

    base: Settings
    run_id: str
    work: Path
    client: redis.Redis
    timeout_s: float


def start_run(events: int) -> BenchRun:
    """A new run; the time-out allows at least 1,000 events per second (180 s minimum)."""
    base = Settings.from_env({k: v for k, v in os.environ.items() if k.startswith("KPI_")})
    run_id = f"bench-{uuid.uuid4().hex[:6]}"
    work = Path(tempfile.mkdtemp(prefix=f"{run_id}-"))
    say(f"run {run_id}; logs in {work}")
    return BenchRun(
        base, run_id, work, redis.Redis.from_url(base.redis_url), max(180.0, events / 1_000)
    )


@dataclass(frozen=True)
class Contender:
    """A finished throughput measurement: events between the first and the last one timed.

    Workers also carry what the timed events cost, in µs each (NaN: not measured).
    """

    name: str
    events: int
    seconds: float
    note: str = ""
    redis_us: float = float("nan")  # Redis EVALSHA time per event timed (workers only)
    cpu_us: float = float("nan")  # the process's CPU time per event timed (workers only)

    @property
    def rate(self) -> float:
        """Events per second (0 when nothing was timed)."""
        return self.events / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class ProcessResult:
    """What a contender process writes when it has processed every event."""

    events: int
    first: float  # wall-clock time of the first consumed event
    last: float  # wall-clock time the last event was processed
    extra: dict[str, object]

    def write(self, path: Path) -> None:
        """Write atomically, so the parent never reads half a file."""
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        tmp.rename(path)

    @classmethod
    def read(cls, path: Path) -> ProcessResult:
        """Read a file written by :meth:`write`."""
        doc = json.loads(path.read_text())
        return cls(int(doc["events"]), float(doc["first"]), float(doc["last"]), doc["extra"])


def contender_arguments(description: str | None) -> argparse.ArgumentParser:
    """The command line every contender process takes (the benchmark passes these)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--result", type=Path, required=True)
    return parser


def faust_app(group: str, bootstrap: str, datadir: Path) -> faust.App:
    """A Faust app reading raw bytes from the run's topics (both Faust contenders)."""
    return faust.App(
        group,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        datadir=str(datadir),
        consumer_auto_offset_reset="earliest",
        topic_partitions=PARTITIONS,
        topic_replication_factor=1,
    )


def limits() -> DecodeLimits:
    """The decoder's bounds with the default settings (every contender decodes the same way)."""
    return decode_limits(Settings())


def now_ms() -> int:
    """Wall-clock epoch milliseconds."""
    return int(time.time() * 1000)


def free_port() -> int:
    """A TCP port nobody listens on right now (for exporters, worker metrics, Prometheus)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (``share`` in 0..1); NaN without values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))
    return ordered[rank]


def median(values: list[float]) -> float:
    """Median; NaN without values."""
    return statistics.median(values) if values else float("nan")
