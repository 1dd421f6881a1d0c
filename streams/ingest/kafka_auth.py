"""Kafka connection security from settings, for Faust and for plain aiokafka clients.

``KPI_KAFKA_SECURITY_PROTOCOL`` is one of PLAINTEXT (default), SSL, SASL_PLAINTEXT
or SASL_SSL; SASL uses ``KPI_KAFKA_SASL_MECHANISM`` (SCRAM-SHA-256 by default)
with ``KPI_KAFKA_SASL_USERNAME`` / ``KPI_KAFKA_SASL_PASSWORD`` (or ``..._FILE``);
TLS verifies the broker with ``KPI_KAFKA_SSL_CAFILE`` (else the system's CAs) and, when
the broker asks for one, presents ``KPI_KAFKA_SSL_CERTFILE`` with ``KPI_KAFKA_SSL_KEYFILE``.
"""

from __future__ import annotations

import ssl
from typing import Any

from streams.common.settings import Settings, env_name
from streams.common.tls import TlsFiles, client_context

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")


def tls_files(settings: Settings) -> TlsFiles:
    """The Kafka client's PEM files, with their settings' names."""
    return TlsFiles(
        settings.kafka_ssl_cafile,
        settings.kafka_ssl_certfile,
        settings.kafka_ssl_keyfile,
        env_name("kafka_ssl_cafile"),
        env_name("kafka_ssl_certfile"),
        env_name("kafka_ssl_keyfile"),
    )


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """A verifying TLS context when the protocol uses TLS (SettingsError for bad files)."""
    if settings.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    return client_context(tls_files(settings))


def client_kwargs(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaAdminClient."""
    protocol = settings.kafka_security_protocol
    kwargs: dict[str, Any] = {"security_protocol": protocol}
    context = ssl_context(settings)
    if context is not None:
        kwargs["ssl_context"] = context
    if protocol.startswith("SASL"):
        kwargs.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=settings.kafka_sasl_password,
        )
    return kwargs


def faust_credentials(settings: Settings) -> Any:
    """``broker_credentials`` for the Faust app (None for PLAINTEXT)."""
    import faust

    protocol = settings.kafka_security_protocol
    context = ssl_context(settings)
    if protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password,
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None
