"""A minimal client of Prometheus's HTTP query API (no dependencies)."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from dataclasses import dataclass

from streams.common.errors import KpiError


class PromQLError(KpiError):
    """Prometheus refused a query or could not be reached."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One instant-vector element."""

    labels: dict[str, str]
    value: float


class PrometheusClient:
    """Runs instant and range queries against one Prometheus."""

    def __init__(self, base_url: str, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def _get(self, path: str, params: dict[str, str]) -> dict[str, object]:
        url = f"{self.base_url}{path}?{urllib.parse.urlencode(params)}"
        if not url.startswith(("http://", "https://")):
            raise PromQLError(f"not an http(s) URL: {url}")
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as response:  # noqa: S310
                body = json.load(response)
        except OSError as exc:
            raise PromQLError(f"{url}: {exc}") from exc
        if body.get("status") != "success":
            raise PromQLError(f"{params.get('query')}: {body.get('error', body)}")
        data = body["data"]
        assert isinstance(data, dict)
        return data

    def query(self, promql: str, at: float | None = None) -> list[Sample]:
        """Instant query; returns one sample per series (scalars as one unlabelled sample)."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._get("/api/v1/query", params)
        if data["resultType"] in ("scalar", "string"):
            result = data["result"]
            assert isinstance(result, list)
            return [Sample({}, float(result[1]))]
        series = data["result"]
        assert isinstance(series, list)
        return [Sample(dict(item["metric"]), float(item["value"][1])) for item in series]

    def query_range(
        self, promql: str, start: float, end: float, step_s: float
    ) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
        """Range query; returns (labels, [(timestamp, value), ...]) per series."""
        data = self._get(
            "/api/v1/query_range",
            {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step_s}"},
        )
        series = data["result"]
        assert isinstance(series, list)
        return [
            (dict(item["metric"]), [(float(t), float(v)) for t, v in item["values"]])
            for item in series
        ]

    def ready(self) -> bool:
        """True when Prometheus answers its readiness probe."""
        try:
            with urllib.request.urlopen(f"{self.base_url}/-/ready", timeout=self.timeout_s) as r:  # noqa: S310
                return bool(r.status == 200)
        except OSError:
            return False
