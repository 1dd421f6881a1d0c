"""``kpi dashboards push`` against a local stand-in of Grafana's HTTP API.

The stand-in implements the documented endpoints the push uses and refuses
anything else: wrong paths, missing bearer token, bodies without the fields
Grafana requires, dashboards into a folder that does not exist.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from grafana_client.client import GrafanaException

from dashboards.boards import DASHBOARDS
from dashboards.push import DATASOURCE_UID, FOLDER_UID, push

TOKEN = "glsa_test_token"


class FakeGrafana:
    def __init__(self) -> None:
        self.folders: dict[str, dict[str, Any]] = {}
        self.datasources: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.violations: list[str] = []


def make_handler(state: FakeGrafana) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            if self.headers.get("Content-Type", "").split(";")[0] != "application/json":
                state.violations.append(f"{self.command} {self.path}: not JSON")
            return json.loads(self.rfile.read(length) or b"{}")

        def _route(self) -> None:
            state.requests.append((self.command, self.path))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._send(401, {"message": "Unauthorized"})
                return
            parts = self.path.split("?")[0].strip("/").split("/")
            method = self.command
            if parts[:2] == ["api", "folders"]:
                if method == "GET" and len(parts) == 3:
                    folder = state.folders.get(parts[2])
                    self._send(200, folder) if folder else self._send(404, {"message": "not found"})
                    return
                if method == "POST" and len(parts) == 2:
                    body = self._body()
                    if not body.get("title"):
                        self._send(400, {"message": "title required"})
                        return
                    if body.get("uid") in state.folders:
                        self._send(409, {"message": "folder exists"})
                        return
                    state.folders[body["uid"]] = {"uid": body["uid"], "title": body["title"]}
                    self._send(200, state.folders[body["uid"]])
                    return
            if parts[:3] == ["api", "datasources", "uid"] and len(parts) == 4:
                uid = parts[3]
                if method == "GET":
                    ds = state.datasources.get(uid)
                    self._send(200, ds) if ds else self._send(404, {"message": "not found"})
                    return
                if method == "PUT":
                    if uid not in state.datasources:
                        self._send(404, {"message": "not found"})
                        return
                    state.datasources[uid] = self._checked_datasource()
                    self._send(
                        200, {"message": "Datasource updated", "datasource": state.datasources[uid]}
                    )
                    return
            if parts == ["api", "datasources"] and method == "POST":
                ds = self._checked_datasource()
                if ds.get("uid") in state.datasources:
                    self._send(409, {"message": "data source with the same uid already exists"})
                    return
                state.datasources[ds["uid"]] = ds
                self._send(200, {"message": "Datasource added", "datasource": ds})
                return
            if parts == ["api", "dashboards", "db"] and method == "POST":
                body = self._body()
                board = body.get("dashboard") or {}
                if not board.get("title") or not board.get("uid") or "id" in board:
                    self._send(400, {"message": "dashboard needs title and uid, and no id"})
                    return
                if body.get("folderUid") not in state.folders:
                    self._send(400, {"message": "folder not found"})
                    return
                old = state.dashboards.get(board["uid"])
                if old is not None and body.get("overwrite") is not True:
                    self._send(412, {"status": "version-mismatch"})
                    return
                version = (old["version"] + 1) if old else 1
                state.dashboards[board["uid"]] = {
                    "dashboard": board,
                    "version": version,
                    "folderUid": body["folderUid"],
                }
                self._send(
                    200,
                    {
                        "id": len(state.dashboards),
                        "uid": board["uid"],
                        "url": f"/d/{board['uid']}",
                        "status": "success",
                        "version": version,
                    },
                )
                return
            state.violations.append(f"unexpected {method} {self.path}")
            self._send(404, {"message": "not found"})

        def _checked_datasource(self) -> dict[str, Any]:
            ds = self._body()
            for key in ("name", "type", "access", "url"):
                if not ds.get(key):
                    state.violations.append(f"datasource without {key}")
            return ds

        do_GET = do_POST = do_PUT = do_DELETE = _route

    return Handler


@pytest.fixture
def grafana() -> Iterator[tuple[str, FakeGrafana]]:
    state = FakeGrafana()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()


def test_first_push_creates_everything_and_a_second_overwrites(
    grafana: tuple[str, FakeGrafana],
) -> None:
    url, state = grafana
    first = push(url, TOKEN, "http://prometheus:9090")
    assert first.folder_created and first.datasource == "created"
    assert set(state.dashboards) == set(DASHBOARDS)
    assert all(d["folderUid"] == FOLDER_UID for d in state.dashboards.values())
    assert state.datasources[DATASOURCE_UID]["url"] == "http://prometheus:9090"
    second = push(url, TOKEN, "http://prom.internal:9090")
    assert not second.folder_created and second.datasource == "updated"
    assert {d["version"] for d in state.dashboards.values()} == {2}
    assert state.datasources[DATASOURCE_UID]["url"] == "http://prom.internal:9090"
    assert [r for r in state.requests if r == ("POST", "/api/folders")] == [
        ("POST", "/api/folders")
    ]
    assert state.violations == []


def test_a_wrong_token_is_refused(grafana: tuple[str, FakeGrafana]) -> None:
    url, state = grafana
    with pytest.raises(GrafanaException) as refused:
        push(url, "wrong", "http://prometheus:9090")
    assert refused.value.status_code == 401
    assert state.dashboards == {}
