"""Contender (c): this project's ``kpi worker``, run as processes and watched through Redis.

The worker stores each partition's last applied offset and watermark in Redis
(:class:`streams.common.keys.KeyLayout`); the benchmark polls them, so it measures
what has really been applied, not what has merely been consumed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import redis

from loadtest.throughput.common import PARTITIONS, Contender, free_port
from loadtest.throughput.costs import Usage, usage
from streams.common.keys import KeyLayout, Shard
from streams.common.settings import Settings, env_name

POLL_S = 0.05
K = TypeVar("K")

LastOffsets = Mapping[int, int] | Mapping[str, Mapping[int, int]]
"""Last offset per partition: of the clickstream topic, or per topic (topic -> partition ->)."""


def service_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment of a ``kpi`` process: the run's settings as ``KPI_*`` variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KPI_")}
    for name in (
        "kafka_bootstrap",
        "redis_url",
        "redis_prefix",
        "clickstream_topic",
        "orders_topic",
        "chat_topic",
        "marketing_topic",
        "dead_letter_topic",
        "topic_partitions",
        "consumer_group",
        "exporter_port",
        "worker_metrics_port",
    ):
        env[env_name(name)] = str(getattr(settings, name))
    env["KPI_LOG_LEVEL"] = "WARNING"
    env.update(extra)
    return env


def start_kpi(
    command: str,
    settings: Settings,
    log: Path,
    code: Path | None = None,
    **extra: str,
) -> subprocess.Popen[bytes]:
    """Start ``kpi <command>`` for ``settings``; output goes to ``log``.

    ``code``: a checkout (a git worktree of another commit, say) whose ``streams``
    package runs instead of this one's.
    """
    env = service_env(settings, **extra)
    if code is not None:
        env["PYTHONPATH"] = str(code)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "streams.cli", command],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=code,
        )


def start_workers(
    settings: Settings,
    count: int,
    logs: Path,
    ports: list[int] | None = None,
    code: Path | None = None,
) -> list[subprocess.Popen[bytes]]:
    """``count`` workers in one consumer group, each with its own metrics port and data folder."""
    ports = ports or [free_port() for _ in range(count)]
    return [
        start_kpi(
            "worker",
            settings.replace(worker_metrics_port=ports[i]),
            logs / f"{settings.redis_prefix}-worker{i}.log",
            code,
            KPI_FAUST_DATADIR=tempfile.mkdtemp(prefix="faust-", dir=logs),
        )
        for i in range(count)
    ]


def stop(processes: list[subprocess.Popen[bytes]], sig: int = signal.SIGTERM) -> None:
    """``sig``, then SIGKILL after 20 s: only the processes this benchmark started."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(sig)
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident memory) of a live process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class ShardReader:
    """Reads the applied offsets and watermarks of the partitions of some topics from Redis.

    ``topics`` defaults to the clickstream topic alone.
    """

    def __init__(
        self, client: redis.Redis, settings: Settings, topics: Sequence[str] | None = None
    ) -> None:
        layout = KeyLayout(settings.redis_prefix)
        names = [settings.clickstream_topic] if topics is None else list(topics)
        self.shards = [Shard(topic, p) for topic in names for p in range(PARTITIONS)]
        self.client = client
        self.applied_keys = [layout.applied(s) for s in self.shards]
        self.watermark_keys = [layout.watermark(s) for s in self.shards]

    def applied(self) -> dict[Shard, int]:
        """Shard -> last applied offset (-1 before its first batch)."""
        values = self.client.mget(self.applied_keys)
        return {s: -1 if v is None else int(v) for s, v in zip(self.shards, values, strict=True)}

    def watermarks(self) -> dict[Shard, int]:
        """Shard -> newest event time applied (epoch ms), for shards that have one."""
        values = self.client.mget(self.watermark_keys)
        return {s: int(v) for s, v in zip(self.shards, values, strict=True) if v is not None}


def by_shard(settings: Settings, last_offsets: LastOffsets) -> dict[Shard, int]:
    """Last offsets keyed by shard; a plain partition -> offset map is the clickstream topic's."""
    out: dict[Shard, int] = {}
    for key, value in last_offsets.items():
        if isinstance(key, str) and isinstance(value, Mapping):
            out.update({Shard(key, p): offset for p, offset in value.items()})
        elif isinstance(key, int) and isinstance(value, int):
            out[Shard(settings.clickstream_topic, key)] = value
    return out


def applied_count(applied: Mapping[K, int]) -> int:
    """Records applied so far (offsets start at 0 on a fresh topic)."""
    return sum(offset + 1 for offset in applied.values())


@dataclass(frozen=True)
class WorkerRun:
    """A timed worker run and the processes' peak memory."""

    contender: Contender
    peak_mb: list[float]


def run_workers(
    client: redis.Redis,
    settings: Settings,
    last_offsets: LastOffsets,
    count: int,
    logs: Path,
    name: str,
    timeout_s: float,
    code: Path | None = None,
    watch: Callable[[list[int]], Callable[[], None]] | None = None,
) -> WorkerRun:
    """Start ``count`` workers and time them from the first applied batch to the last.

    The clock starts at the first poll that sees an applied offset; the events
    applied by then are not counted, so the rate covers only timed events. The
    workers' CPU time and Redis's ``EVALSHA`` time are read at the same two polls
    and divided by the events timed. ``watch`` (a profiler, say) is called with the
    workers' process ids when the clock starts; what it returns is called when the
    last offset is applied, before the workers stop.
    """
    last = by_shard(settings, last_offsets)
    reader = ShardReader(client, settings, sorted({shard.topic for shard in last}))
    processes = start_workers(settings, count, logs, code=code)
    pids = [p.pid for p in processes]
    started = time.monotonic()
    first_at = 0.0
    first_applied = 0
    at_first: Usage | None = None
    unwatch: Callable[[], None] | None = None
    try:
        while True:
            applied = reader.applied()
            now = time.monotonic()
            if not first_at and applied_count(applied) > 0:
                first_at, first_applied = now, applied_count(applied)
                at_first = usage(client, pids)
                if watch is not None:
                    unwatch = watch(pids)
            if all(applied.get(shard, -1) >= offset for shard, offset in last.items()):
                break
            dead = [p.returncode for p in processes if p.poll() is not None]
            if dead:
                raise RuntimeError(f"a worker exited with {dead[0]}; see {logs}")
            if now - started > timeout_s:
                raise TimeoutError(f"{name}: not done after {timeout_s:.0f}s; see {logs}")
            time.sleep(POLL_S)
        at_end = usage(client, pids)
        peaks = [peak_rss_mb(pid) for pid in pids]
    finally:
        if unwatch is not None:
            unwatch()
        stop(processes)
    timed = applied_count(last) - first_applied
    contender = Contender(name, timed, now - first_at, f"{count} process(es)")
    if at_first is not None:
        redis_us, cpu_us = (at_end - at_first).per_event_us(timed)
        contender = replace(contender, redis_us=redis_us, cpu_us=cpu_us)
    return WorkerRun(contender, peaks)
