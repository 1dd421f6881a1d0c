"""TLS on the client side of every hop: certificates loaded one way, failures named.

A wrong or missing certificate is a configuration error, not an outage: the worker
retries Redis and Kafka while they are down, but it must not retry a certificate it
will never accept. :func:`client_context` turns unreadable files into a
:class:`SettingsError`, and :func:`probe` does one handshake (and, for Redis, one
``PING``) so that a refused certificate is one line at start instead of a retry loop
or a traceback. An address that does not answer at all is left to the caller's
ordinary waiting.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass

from streams.common.errors import SettingsError


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of one client, each with the setting that names it (for messages).

    ``cafile`` verifies the server (empty: the system's CAs); ``certfile`` and ``keyfile``
    are the optional client certificate and its key (the key may sit in ``certfile``).
    """

    cafile: str = ""
    certfile: str = ""
    keyfile: str = ""
    cafile_setting: str = ""
    certfile_setting: str = ""
    keyfile_setting: str = ""


def client_context(files: TlsFiles) -> ssl.SSLContext:
    """A verifying client context (TLS 1.2 or newer, host names checked).

    Raises :class:`SettingsError` naming the setting when a file cannot be read, is not
    PEM, or the key does not match the certificate.
    """
    for path, setting in (
        (files.cafile, files.cafile_setting),
        (files.certfile, files.certfile_setting),
        (files.keyfile, files.keyfile_setting),
    ):
        if path:
            _readable(path, setting)
    if files.keyfile and not files.certfile:
        raise SettingsError(f"{files.keyfile_setting} is set without {files.certfile_setting}")
    try:
        context = ssl.create_default_context(cafile=files.cafile or None)
    except ssl.SSLError as exc:
        raise SettingsError(
            f"{files.cafile_setting}={files.cafile!r}: not a PEM CA certificate ({_reason(exc)})"
        ) from exc
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if files.certfile:
        try:
            context.load_cert_chain(files.certfile, files.keyfile or None)
        except ssl.SSLError as exc:
            raise SettingsError(
                f"{files.certfile_setting}={files.certfile!r}"
                + (f", {files.keyfile_setting}={files.keyfile!r}" if files.keyfile else "")
                + f": not a PEM certificate with its matching key ({_reason(exc)})"
            ) from exc
    return context


def probe(
    service: str, host: str, port: int, context: ssl.SSLContext, files: TlsFiles, *, ping: bool
) -> None:
    """One TLS handshake with ``host:port`` (then ``PING`` if ``ping``, for Redis).

    Returns quietly when the handshake succeeds or the address does not answer (the
    caller waits for the service as usual). Raises :class:`SettingsError` with one line
    naming the service, the address, the reason and the setting to check when the
    server's certificate is not trusted, the server refuses ours, or the port does not
    speak TLS.
    """
    where = f"{service} at {host}:{port}"
    try:
        raw = socket.create_connection((host, port), timeout=5)
    except OSError:
        return
    shaken = False
    try:
        with context.wrap_socket(raw, server_hostname=host, do_handshake_on_connect=False) as tls:
            tls.do_handshake()
            shaken = True
            if ping:
                # A TLS 1.3 server checks a client certificate after the handshake: its
                # refusal arrives with the first reply.
                tls.sendall(b"PING\r\n")
                if not tls.recv(64):
                    raise ConnectionResetError("the server closed the connection")
    except ssl.SSLCertVerificationError as exc:
        raise SettingsError(
            f"{where}: its TLS certificate is not trusted ({exc.verify_message}); "
            f"set {files.cafile_setting} to the CA that signed it"
        ) from exc
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as exc:
        reason = _reason(exc)
        if shaken or "certificate" in reason:
            given = (
                f"{files.certfile_setting}={files.certfile!r} is not signed by a CA it trusts"
                if files.certfile
                else f"it may require one: set {files.certfile_setting} and {files.keyfile_setting}"
            )
            raise SettingsError(
                f"{where}: the server refused the TLS connection ({reason}); {given}"
            ) from exc
        raise SettingsError(
            f"{where}: TLS handshake failed ({reason}); is this a TLS port?"
        ) from exc
    except TimeoutError as exc:
        raise SettingsError(f"{where}: no TLS answer within 5 s; is this a TLS port?") from exc
    finally:
        raw.close()


def _client_refused(reason: str) -> bool:
    lowered = reason.lower()
    return any(
        word in lowered
        for word in ("certificate required", "unknown ca", "bad certificate", "eof", "closed")
    )


def _readable(path: str, setting: str) -> None:
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise SettingsError(f"{setting}={path!r}: cannot read the file ({exc.strerror})") from exc


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLEOFError | ConnectionResetError | BrokenPipeError):
        return "it closed the connection"
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).replace("_", " ").lower()
    return str(exc) or type(exc).__name__
