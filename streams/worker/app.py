"""Faust wiring: the app, its dead-letter topic, the consuming task and the Kafka probe.

The input topics are read by one task of the app (:mod:`streams.worker.consumer`):
whole fetches grouped by partition, each applied through
:class:`streams.worker.pipeline.BatchProcessor`, offsets committed after Redis holds
them. The processor never raises on a Redis outage (it retries); any other
error ends the process before the batch is committed, and a restarted worker
reapplies it (the offset guard in Redis skips what was applied). KPI state is
never kept in Faust tables.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import faust
import orjson
from aiokafka.client import AIOKafkaClient

from streams.common.keys import Shard
from streams.common.settings import Settings, topic_kinds
from streams.ingest.events import Rejection
from streams.ingest.kafka_auth import client_kwargs, faust_credentials
from streams.worker.consumer import consume, new_consumer
from streams.worker.runtime import async_redis, batch_processor
from streams.worker.worker_metrics import WorkerMetrics

log = logging.getLogger(__name__)

DEAD_LETTER_RAW_LIMIT = 65_536
EXIT_UNAPPLIED_BATCH = 70


class TopicDeadLetters:
    """Dead letters as JSON on a Kafka topic, keyed by the source shard."""

    def __init__(self, topic: Any) -> None:
        self.topic = topic

    async def publish(self, shard: Shard, offset: int, rejection: Rejection, raw: bytes) -> None:
        """Send the reason, the source position and (a prefix of) the raw message."""
        record = {
            "reason": rejection.reason.value,
            "detail": rejection.detail,
            "topic": shard.topic,
            "partition": shard.partition,
            "offset": offset,
            "size": len(raw),
            "raw": raw[:DEAD_LETTER_RAW_LIMIT].decode("utf-8", "replace"),
        }
        await self.topic.send(key=shard.id.encode(), value=orjson.dumps(record))


def create_app(settings: Settings) -> faust.App:
    """A Faust app consuming the four input topics into Redis."""
    app = faust.App(
        # The input topics are consumed by the group ``consumer_group`` (streams.worker.consumer);
        # Faust's own consumer subscribes to nothing and gets a group of its own.
        f"{settings.consumer_group}-faust",
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        datadir=settings.faust_datadir,
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=1,
        broker_session_timeout=settings.kafka_session_timeout_seconds,
        broker_heartbeat_interval=min(3.0, settings.kafka_session_timeout_seconds / 3),
        producer_acks=-1,
        broker_credentials=faust_credentials(settings),
    )
    dead_letter_topic = app.topic(
        settings.dead_letter_topic,
        key_type=bytes,
        value_type=bytes,
        partitions=settings.topic_partitions,
    )
    state: dict[str, Any] = {}

    @app.task  # type: ignore[untyped-decorator]
    async def kpis() -> None:
        """Consume the input topics into Redis until the worker stops."""
        processor = batch_processor(
            settings, async_redis(settings), TopicDeadLetters(dead_letter_topic)
        )
        metrics = WorkerMetrics.serve(settings, topic_kinds(settings))
        processor.on_health = metrics.set_healthy
        state["metrics"] = metrics
        consumer = new_consumer(settings, list(topic_kinds(settings)), processor)
        await consumer.start()
        try:
            await consume(consumer, processor, settings, metrics)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Nothing of this fetch is committed yet: exit before anything else can
            # commit. A restarted worker reapplies it; the offset guard skips what
            # Redis already holds.
            log.critical("unexpected error applying a batch; exiting uncommitted", exc_info=True)
            logging.shutdown()
            os._exit(EXIT_UNAPPLIED_BATCH)
        finally:
            await consumer.stop()

    @app.timer(interval=settings.health_probe_seconds)  # type: ignore[untyped-decorator]
    async def probe_kafka() -> None:
        """Ask Kafka for cluster metadata; a failure marks the worker unhealthy."""
        metrics: WorkerMetrics | None = state.get("metrics")
        if metrics is None:
            return
        client = state.get("probe")
        if client is None:
            client = state["probe"] = AIOKafkaClient(
                bootstrap_servers=settings.kafka_bootstrap, **client_kwargs(settings)
            )
        try:
            if not state.get("probe_ready"):
                await asyncio.wait_for(client.bootstrap(), settings.health_probe_seconds)
                state["probe_ready"] = True
            await asyncio.wait_for(client.fetch_all_metadata(), settings.health_probe_seconds)
        except Exception as exc:  # any failure to reach the cluster
            if metrics.kafka_up._value.get() == 1:
                log.warning("kafka unreachable from the worker: %s", exc)
            metrics.set_kafka(False)
        else:
            if not metrics.kafka_reachable:
                log.info("kafka is reachable again")
            metrics.set_kafka(True)

    return app
