"""Creates the service's Kafka topics (idempotent)."""

from __future__ import annotations

import asyncio
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError

from streams.common.errors import KpiError
from streams.common.settings import Settings, topic_kinds
from streams.ingest.kafka_auth import client_kwargs

log = logging.getLogger(__name__)


async def create_topics(settings: Settings, wait_s: float = 60.0) -> list[str]:
    """Create the input and dead-letter topics if missing; returns those created."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, **client_kwargs(settings)
    )
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        try:
            await admin.start()
            break
        except KafkaConnectionError as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise KpiError(
                    f"cannot reach Kafka at {settings.kafka_bootstrap} within {wait_s:.0f}s "
                    f"({exc}); check KPI_KAFKA_BOOTSTRAP, KPI_KAFKA_SECURITY_PROTOCOL and the "
                    "SASL credentials"
                ) from exc
            log.info("waiting for Kafka at %s", settings.kafka_bootstrap)
            await asyncio.sleep(1)
    try:
        existing = set(await admin.list_topics())
        wanted = [*topic_kinds(settings), settings.dead_letter_topic]
        missing = [name for name in wanted if name not in existing]
        if missing:
            await admin.create_topics(
                [NewTopic(name, settings.topic_partitions, 1) for name in missing]
            )
            log.info("created topics %s with %d partitions", missing, settings.topic_partitions)
        return missing
    finally:
        await admin.close()
