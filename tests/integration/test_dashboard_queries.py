"""Every query of every panel of every dashboard, run against the real Prometheus.

Live generated traffic runs through the real stack; last week's minutes are
replayed and backfilled so that week-over-week panels have something to show.
Not one query may fail, come back empty, or give NaN.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dashboards.boards import DASHBOARDS
from dashboards.build import JSON_DIR, panel_queries
from loadtest.shop_generator import flush_events, generate_shop
from streams.views.promql import PromQLError
from tests.integration.clock import Clock, latest_instant
from tests.integration.conftest import Pipeline, kpi_env, run_kpi
from tests.integration.kpi_compare import MINUTE_MS, start_of

pytestmark = [pytest.mark.integration, pytest.mark.clock]

VARIABLES = {"$channel": "search", "$campaign": "double11", "$page_type": "home", "$device": "app"}
WEEK_MS = 7 * 86_400_000


@pytest.fixture
def clock(clock: Clock) -> Clock:
    """The test clock, moved back to 22:30 the evening before when its queries (run a few
    minutes from now) would fall within 90 minutes after a business-day start, and so a
    week's or a month's.

    Right after midnight "today" has no paid orders, no closed visits and no rankings yet,
    and its panels rightly show "no data" (KPI_SPEC: an undefined ratio is no data); this
    test needs data in every window, so it reads a moment that has some.
    """
    queried = clock.now() + 10 * 60
    day = start_of("d", queried)
    if queried - day < 100 * 60:
        return clock.moved_to(latest_instant("22:30:00", day))
    return clock


def backfill_last_week(pipeline: Pipeline, folder: Path, now_ms: int) -> None:
    """Replay shop traffic of a week before ``now_ms`` into another prefix and backfill its
    minutes.

    ``now_ms`` is Prometheus's own "now": week-over-week panels look one week behind it,
    on the real clock, whatever the test clock says."""
    past = generate_shop(
        seed=21, start_ms=now_ms - WEEK_MS - 40 * MINUTE_MS, duration_s=45 * 60, visitors=800
    )
    for kind, messages in past.messages.items():
        (folder / f"{kind}.jsonl").write_bytes(b"\n".join(v for _, v in messages) + b"\n")
    env = kpi_env(pipeline.stack, pipeline.clock, KPI_MINUTE_RETENTION_SECONDS=str(9 * 86_400))
    start_s = (now_ms - WEEK_MS) // 1000 - 30 * 60

    def iso(seconds: int) -> str:
        return datetime.fromtimestamp(seconds, UTC).isoformat()

    data = Path(pipeline.stack.env["KPI_STACK_DIR"]) / "prometheus" / "data"
    for args in (
        ["replay", str(folder)],
        [
            "backfill",
            "--from",
            iso(start_s),
            "--to",
            iso(start_s + 40 * 60),
            "--step",
            "30",
            "--metrics",
            "shop_gmv_yuan",
            "--out",
            str(folder / "out"),
            "--into",
            str(data),
        ],
    ):
        run_kpi(env, *args, timeout_s=600)
    pipeline.stack.run_stack("down", "prometheus")
    pipeline.stack.run_stack("up", "prometheus")


def test_every_panel_query_returns_data(
    pipeline: Pipeline, tmp_path: Path, measure: Callable[[str, str], None]
) -> None:
    backfill_last_week(pipeline, tmp_path, int(pipeline.clock.real_now() * 1000))
    now_ms = pipeline.clock.now_ms()
    traffic = generate_shop(
        seed=22,
        start_ms=now_ms - 80 * MINUTE_MS,
        duration_s=80 * 60,
        visitors=2_500,
        bad_ratio=0.01,
    )
    flush = flush_events(22, now_ms, 4)
    pipeline.create_topics()
    pipeline.start("exporter")
    pipeline.start("worker").wait_log("Worker ready")
    # The worker's batch histograms start at zero; once Prometheus holds that zero, the
    # batches below are an increase that rate() can see, however fast they are applied.
    prom = pipeline.stack.prometheus()
    zero = f'shop_worker_batch_records_count{{topic="{pipeline.topic}"}} == 0'
    deadline = time.monotonic() + 30
    while not prom.query(zero):
        assert time.monotonic() < deadline, "Prometheus never scraped the worker"
        time.sleep(0.2)
    produced: dict[str, dict[int, int]] = {}
    for kind, messages in traffic.messages.items():
        produced[kind] = pipeline.produce(messages, kind=kind).last_offsets
    flushed = pipeline.produce([(k, v) for _, k, v in flush], partitions=[p for p, _, _ in flush])
    for partition, offset in flushed.last_offsets.items():
        produced["clickstream"][partition] = max(produced["clickstream"][partition], offset)
    pipeline.wait_all_applied(produced)
    hour_ms = 3_600_000
    if pipeline.clock.now_ms() // hour_ms != now_ms // hour_ms:
        # The test clock crossed an hour edge since the traffic was made (TEST_CLOCK_AT=59:55):
        # the running hour has no page view, so its live 跳失率 is rightly "no data". Give
        # it one, as the next visitor would.
        at = datetime.fromtimestamp(pipeline.clock.now_ms() / 1000, UTC).isoformat()
        doc = {"schema": 1, "type": "page_view", "event_id": "edge-1", "event_time": at}
        doc |= {"visitor_id": "v-edge", "page": "/", "page_type": "home", "channel": "search"}
        edge = pipeline.produce([(b"v-edge", json.dumps(doc).encode())]).last_offsets
        pipeline.wait_all_applied({"clickstream": edge})
    time.sleep(5)  # a few more scrapes of the exporter and the worker (1 s interval)

    failures: list[str] = []
    count = 0
    for uid in DASHBOARDS:
        board = json.loads((JSON_DIR / f"{uid}.json").read_text(encoding="utf-8"))
        for title, expr in panel_queries(board):
            for name, value in VARIABLES.items():
                expr = expr.replace(name, value)
            count += 1
            try:
                samples = prom.query(expr)
            except PromQLError as exc:
                failures.append(f"{uid} / {title}: {expr}: error {exc}")
                continue
            if not samples:
                failures.append(f"{uid} / {title}: {expr}: empty")
            elif any(math.isnan(s.value) for s in samples):
                failures.append(f"{uid} / {title}: {expr}: NaN")
    measure("dashboards: panel queries run against Prometheus", f"{count}")
    assert failures == [], "\n".join(failures)
