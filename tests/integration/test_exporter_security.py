"""The exporter behind TLS and basic authentication, as a real process."""

from __future__ import annotations

import base64
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.integration.clock import Clock
from tests.integration.conftest import ROOT, Stack, free_port, kpi_env

pytestmark = pytest.mark.integration


def test_metrics_need_tls_and_the_password(stack: Stack, clock: Clock, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    password_file = tmp_path / "password"
    password_file.write_text("s3cret\n")
    port = free_port()
    env = kpi_env(
        stack,
        clock,
        KPI_EXPORTER_PORT=str(port),
        KPI_EXPORTER_TLS_CERT=str(cert),
        KPI_EXPORTER_TLS_KEY=str(key),
        KPI_EXPORTER_BASIC_AUTH_USER="prometheus",
        KPI_EXPORTER_BASIC_AUTH_PASSWORD_FILE=str(password_file),
    )
    log = tmp_path / "exporter.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "streams", "exporter"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    try:
        context = ssl.create_default_context(cafile=str(cert))
        url = f"https://127.0.0.1:{port}/metrics"

        def get(user: str, password: str) -> tuple[int, str]:
            request = urllib.request.Request(url)
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
            try:
                with urllib.request.urlopen(request, context=context, timeout=5) as reply:
                    return reply.status, reply.read().decode()
            except urllib.error.HTTPError as exc:
                return exc.code, ""

        deadline = time.monotonic() + 30
        while True:
            try:
                status, body = get("prometheus", "s3cret")
                break
            except (urllib.error.URLError, ConnectionError):
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        assert status == 200 and "shop_exporter_redis_up 1.0" in body
        assert get("prometheus", "wrong")[0] == 401
        assert get("someone", "s3cret")[0] == 401
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # no plain HTTP
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert "s3cret" not in log.read_text()
    finally:
        process.terminate()
        process.wait(timeout=30)
