"""Writes the five dashboards' JSON: the entry point of ``python -m dashboards.build``.

The boards are in :mod:`dashboards.boards`, the panel builders in
:mod:`dashboards.panels`. ``python -m dashboards.build`` writes
``dashboards/json/<uid>.json`` (committed, provisioned by docker-compose, uploaded by
``kpi dashboards push``); a test rebuilds them and checks the committed files are
unchanged, and an integration test runs every panel's every query against the real
Prometheus.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards.boards import DASHBOARDS

JSON_DIR = Path(__file__).resolve().parent / "json"


def render(uid: str) -> str:
    """The JSON of one dashboard, as committed."""
    built = DASHBOARDS[uid]().build()
    return (
        json.dumps(
            json.loads(JSONEncoder(sort_keys=True).encode(built)),
            indent=2,
            sort_keys=True,
            ensure_ascii=False,
        )
        + "\n"
    )


def panel_queries(document: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, expr) of every query of every panel of a dashboard JSON."""
    for panel in document.get("panels", []):
        for target in panel.get("targets", []):
            if "expr" in target:
                yield panel.get("title", ""), target["expr"]


def main() -> int:
    """Write every dashboard's JSON."""
    JSON_DIR.mkdir(exist_ok=True)
    for uid in DASHBOARDS:
        (JSON_DIR / f"{uid}.json").write_text(render(uid), encoding="utf-8")
        print(f"wrote {JSON_DIR / f'{uid}.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
