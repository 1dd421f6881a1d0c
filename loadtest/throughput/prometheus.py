"""A Prometheus of the benchmark's own, scraping its exporter every second.

Started with ``ops/stack.sh up prometheus`` in a separate stack folder and on
free ports, so the local stack's Prometheus (and whoever uses it) is left
alone and its 5 s default scrape interval does not hide the freshness.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.parse
from pathlib import Path

from loadtest.throughput.common import free_port
from loadtest.throughput.exporter import fetch

PROJECT = Path(__file__).resolve().parents[2]
SCRAPE_INTERVAL = "1s"


class BenchPrometheus:
    """``ops/stack.sh`` Prometheus in ``stack_dir``; stopped and deleted on exit."""

    def __init__(self, stack_dir: Path, exporter_port: int, worker_port: int) -> None:
        self.stack_dir = stack_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("KPI_")},
            "KPI_STACK_DIR": str(stack_dir),
            "KPI_PROMETHEUS_PORT": str(self.port),
            "KPI_EXPORTER_PORT": str(exporter_port),
            "KPI_WORKER_METRICS_PORT": str(worker_port),
            "KPI_SCRAPE_INTERVAL": SCRAPE_INTERVAL,
        }

    def _stack(self, *args: str) -> None:
        subprocess.run(
            [str(PROJECT / "ops" / "stack.sh"), *args],
            env=self.env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def __enter__(self) -> BenchPrometheus:
        self._stack("up", "prometheus")
        return self

    def __exit__(self, *_: object) -> None:
        self._stack("purge")

    def scalar(self, query: str) -> float | None:
        """Value of an instant query that yields one sample (None when it has none)."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
        doc = json.loads(fetch(url, timeout_s=5))
        result = doc["data"]["result"]
        if not result:
            return None
        return float(result[0]["value"][1])
