"""Uploads the folder, the Prometheus datasource and every dashboard to a Grafana.

Uses grafana-client against Grafana's HTTP API: ``GET/POST /api/folders``,
``GET/POST/PUT /api/datasources[/uid/<uid>]`` and ``POST /api/dashboards/db``
with ``overwrite`` so that older versions are replaced.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError

from dashboards.boards import DASHBOARDS
from dashboards.build import JSON_DIR

FOLDER_UID = "shop-kpis"
FOLDER_TITLE = "Shop KPIs"
DATASOURCE_UID = "prometheus"


@dataclass
class PushReport:
    """What the push did."""

    folder_created: bool = False
    datasource: str = ""
    dashboards: list[str] = field(default_factory=list)


def _exists(call: Any, *args: Any) -> bool:
    try:
        call(*args)
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return False
        raise
    return True


def push(url: str, token: str, prometheus_url: str, timeout_s: float = 10.0) -> PushReport:
    """Create or update the folder, the datasource and every dashboard."""
    api = GrafanaApi.from_url(url, credential=token or None, timeout=timeout_s)
    report = PushReport()
    if not _exists(api.folder.get_folder, FOLDER_UID):
        api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)
        report.folder_created = True
    datasource = {
        "uid": DATASOURCE_UID,
        "name": "Prometheus",
        "type": "prometheus",
        "access": "proxy",
        "url": prometheus_url,
        "isDefault": True,
        "jsonData": {"timeInterval": "5s"},
    }
    if _exists(api.datasource.get_datasource_by_uid, DATASOURCE_UID):
        api.datasource.update_datasource_by_uid(DATASOURCE_UID, datasource)
        report.datasource = "updated"
    else:
        api.datasource.create_datasource(datasource)
        report.datasource = "created"
    for uid in DASHBOARDS:
        document = json.loads((JSON_DIR / f"{uid}.json").read_text(encoding="utf-8"))
        document.pop("id", None)
        result = api.dashboard.update_dashboard(
            {
                "dashboard": document,
                "folderUid": FOLDER_UID,
                "overwrite": True,
                "message": "kpi dashboards push",
            }
        )
        report.dashboards.append(f"{uid} (version {result.get('version', '?')})")
    return report
