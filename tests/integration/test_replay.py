"""Replay of generated event logs: every KPI equal to the ground truth, twice, and after a kill."""

from __future__ import annotations

import gzip
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from prometheus_client import CollectorRegistry

from loadtest.shop_generator import flush_events, generate_shop
from loadtest.shop_truth import ShopTruth
from streams.common.settings import Settings
from streams.worker.runtime import kpi_collector
from tests.integration.clock import Clock, placed
from tests.integration.conftest import Stack, kpi_env
from tests.integration.kpi_compare import MINUTE_MS, TARGETS, compare_kpis, series_of

pytestmark = [pytest.mark.integration, pytest.mark.clock]


@dataclass
class Log:
    folder: Path
    truth: ShopTruth
    lines: int


@pytest.fixture(scope="module")
def event_log(tmp_path_factory: pytest.TempPathFactory) -> Log:
    """An hour of shop traffic ending 40 minutes ago, one file per topic, clickstream gzipped."""
    now_ms = placed().now_ms()  # the module's tests place their own clocks, at the same moment
    traffic = generate_shop(
        seed=9,
        start_ms=now_ms - 100 * MINUTE_MS,
        duration_s=60 * 60,
        visitors=2_500,
        bad_ratio=0.01,
    )
    flush = flush_events(9, traffic.last_ms + 31 * MINUTE_MS, 1, traffic.truth)
    folder = tmp_path_factory.mktemp("log")
    lines = 0
    for kind, messages in traffic.messages.items():
        values = [value for _, value in messages]
        if kind == "clickstream":
            values += [value for _, _, value in flush]
            with gzip.open(folder / "clickstream-2026.jsonl.gz", "wb") as out:
                out.write(b"\n".join(values) + b"\n")
        else:
            (folder / f"{kind}.jsonl").write_bytes(b"\n".join(values) + b"\n")
        lines += len(values)
    return Log(folder, traffic.truth, lines)


@pytest.fixture
def replay_env(stack: Stack, clock: Clock) -> Iterator[dict[str, str]]:
    env = kpi_env(
        stack,
        clock,
        KPI_GMV_TARGET_DAY=str(TARGETS["d"]),
        KPI_GMV_TARGET_WEEK=str(TARGETS["w"]),
        KPI_GMV_TARGET_MONTH=str(TARGETS["M"]),
    )
    yield env


def replay(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams", "replay", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def compare(env: dict[str, str], truth: ShopTruth, clock: Clock) -> tuple[list[str], int]:
    settings = Settings.from_env({k: v for k, v in env.items() if k.startswith("KPI_")})
    collector = kpi_collector(settings)
    at = clock.now()
    collector.now_s = lambda: at
    registry = CollectorRegistry()
    registry.register(collector)
    samples = [(s.name, dict(s.labels), s.value) for f in registry.collect() for s in f.samples]
    problems, checked = compare_kpis(truth, series_of(samples), at)
    rejected: dict[str, float] = {}
    for name, labels, value in samples:
        if name == "shop_events_rejected_total":
            rejected[labels["reason"]] = rejected.get(labels["reason"], 0) + value
    expected: dict[str, float] = {}
    for (_, reason), n in truth.rejected.items():
        expected[reason] = expected.get(reason, 0) + n
    if rejected != expected:
        problems.append(f"rejected {rejected} != {expected}")
    return problems, checked + 1


def test_replaying_twice_gives_the_ground_truth_both_times(
    event_log: Log,
    replay_env: dict[str, str],
    clock: Clock,
    measure: Callable[[str, str], None],
) -> None:
    first = replay(replay_env, str(event_log.folder))
    assert first.returncode == 0, first.stderr[-3000:]
    assert f"{event_log.lines:,} records" in first.stderr
    assert ".jsonl.gz:" in first.stderr  # rejects are reported with file and line
    bad = sum(event_log.truth.rejected.values())
    counted = event_log.lines - bad
    assert f"{counted:,} counted, 0 already applied, {bad:,} rejected" in first.stderr
    problems, checked = compare(replay_env, event_log.truth, clock)
    assert problems == [], "\n".join(problems[:30])
    second = replay(replay_env, str(event_log.folder))
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"0 counted, {event_log.lines:,} already applied, 0 rejected" in second.stderr
    again, _ = compare(replay_env, event_log.truth, clock)
    assert again == [], "\n".join(again[:30])
    measure("replay: figures compared after each of two runs", f"{checked:,}")


def test_a_killed_replay_continues_where_it_stopped(
    stack: Stack,
    event_log: Log,
    replay_env: dict[str, str],
    clock: Clock,
    measure: Callable[[str, str], None],
) -> None:
    client = redis.Redis.from_url(stack.redis_url, decode_responses=True)
    prefix = replay_env["KPI_REDIS_PREFIX"]
    process = subprocess.Popen(
        [sys.executable, "-m", "streams", "replay", str(event_log.folder), "--batch", "300"],
        env=replay_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    applied = 0
    while applied < 3_000:
        assert process.poll() is None, "replay finished before it could be killed"
        assert time.monotonic() < deadline, "replay made no progress"
        keys = client.keys(f"{prefix}:{{clickstream@*}}:applied")
        applied = int(client.get(keys[0]) or 0) if keys else 0
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    measure("replay: clickstream lines applied when killed", f"{applied:,}")
    rerun = replay(replay_env, str(event_log.folder))
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "already applied" in rerun.stderr and " 0 already applied" not in rerun.stderr
    problems, _ = compare(replay_env, event_log.truth, clock)
    assert problems == [], "\n".join(problems[:30])
