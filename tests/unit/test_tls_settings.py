"""TLS settings refused before any connection: wrong combinations and unreadable files."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.common.errors import SettingsError
from streams.common.settings import Settings
from streams.common.tls import TlsFiles, client_context

NAMES = ("KPI_X_CAFILE", "KPI_X_CERTFILE", "KPI_X_KEYFILE")


def test_redis_tls_files_need_a_tls_address() -> None:
    with pytest.raises(SettingsError, match="KPI_REDIS_URL is not a TLS address"):
        Settings(redis_url="redis://127.0.0.1:6379/0", redis_tls_cafile="/ca.pem")
    Settings(redis_url="rediss+cluster://127.0.0.1:7000", redis_tls_cafile="/ca.pem")


def test_kafka_tls_files_need_a_tls_protocol() -> None:
    with pytest.raises(SettingsError, match="PLAINTEXT, not SSL or SASL_SSL"):
        Settings(kafka_ssl_cafile="/ca.pem")
    Settings(kafka_security_protocol="SASL_SSL", kafka_ssl_cafile="/ca.pem")


def test_unreadable_and_wrong_files_name_their_setting(tmp_path: Path) -> None:
    missing = str(tmp_path / "none.pem")
    with pytest.raises(SettingsError, match=r"KPI_X_CAFILE=.*cannot read the file"):
        client_context(TlsFiles(missing, "", "", *NAMES))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(SettingsError, match=r"KPI_X_CAFILE=.*not a PEM CA certificate"):
        client_context(TlsFiles(str(garbage), "", "", *NAMES))
    with pytest.raises(SettingsError, match=r"KPI_X_CERTFILE=.*not a PEM certificate"):
        client_context(TlsFiles("", str(garbage), "", *NAMES))
    with pytest.raises(SettingsError, match="KPI_X_KEYFILE is set without KPI_X_CERTFILE"):
        client_context(TlsFiles("", "", str(garbage), *NAMES))
    assert client_context(TlsFiles("", "", "", *NAMES)).verify_mode.name == "CERT_REQUIRED"
