"""Certificates for the test stack's TLS listeners, made by trustme for each session.

One CA signs the servers' certificate (for 127.0.0.1 and localhost) and a client
certificate; a second, unrelated CA stands for "the wrong CA". Keys are written as
unencrypted PKCS#8, which Kafka's PEM key store and Redis both read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography.hazmat.primitives import serialization


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the session's PEM files."""

    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def server_cert(self) -> Path:
        return self.folder / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.folder / "server-key.pem"

    @property
    def client_cert(self) -> Path:
        return self.folder / "client.pem"

    @property
    def client_key(self) -> Path:
        return self.folder / "client-key.pem"

    @property
    def wrong_ca(self) -> Path:
        return self.folder / "wrong-ca.pem"

    @property
    def wrong_client_cert(self) -> Path:
        """A client certificate from the wrong CA (with ``wrong_client_key``)."""
        return self.folder / "wrong-client.pem"

    @property
    def wrong_client_key(self) -> Path:
        return self.folder / "wrong-client-key.pem"


def write_certs(folder: Path) -> TlsFiles:
    """Write a CA, a server and a client certificate (and a wrong CA's) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(folder)
    ca, wrong = trustme.CA(), trustme.CA()
    ca.cert_pem.write_to_path(str(files.ca))
    wrong.cert_pem.write_to_path(str(files.wrong_ca))
    pairs = (
        (ca.issue_cert("127.0.0.1", "localhost"), files.server_cert, files.server_key),
        (ca.issue_cert("kpi-client"), files.client_cert, files.client_key),
        (wrong.issue_cert("kpi-client"), files.wrong_client_cert, files.wrong_client_key),
    )
    for issued, cert_path, key_path in pairs:
        issued.cert_chain_pems[0].write_to_path(str(cert_path))
        key = serialization.load_pem_private_key(issued.private_key_pem.bytes(), password=None)
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return files
