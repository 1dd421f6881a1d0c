"""Faust wiring: the app, its topics and one thin agent per topic.

The agent only groups a ``take_events`` batch by partition and hands each
group to :class:`streams.pipeline.BatchProcessor`; all logic lives there. Faust
acknowledges a batch's offsets only after the loop body returns, and the
processor never raises on a Redis outage (it retries), so no event is
acknowledged before it is applied. KPI state is never kept in Faust tables.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import faust
import orjson
from aiokafka.client import AIOKafkaClient

from streams.events import Rejection
from streams.kafka_auth import client_kwargs, faust_credentials
from streams.keys import Shard
from streams.pipeline import BatchProcessor, Record
from streams.runtime import async_redis, batch_processor
from streams.settings import Settings
from streams.worker_metrics import WorkerMetrics

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
        settings.consumer_group,
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
        broker_commit_every=settings.batch_max_events,
        broker_commit_interval=1.0,
        producer_acks=-1,
        broker_credentials=faust_credentials(settings),
    )
    inputs = app.topic(
        settings.clickstream_topic,
        settings.orders_topic,
        settings.chat_topic,
        settings.marketing_topic,
        key_type=bytes,
        value_type=bytes,
        partitions=settings.topic_partitions,
    )
    dead_letter_topic = app.topic(
        settings.dead_letter_topic,
        key_type=bytes,
        value_type=bytes,
        partitions=settings.topic_partitions,
    )
    state: dict[str, Any] = {}

    @app.agent(inputs, name="kpis")
    async def kpis(stream: Any) -> None:
        if "processor" not in state:
            state["processor"] = batch_processor(
                settings, async_redis(settings), TopicDeadLetters(dead_letter_topic)
            )
            state["metrics"] = WorkerMetrics.serve(
                settings.exporter_host, settings.worker_metrics_port
            )
            state["processor"].on_health = state["metrics"].set_healthy
        processor: BatchProcessor = state["processor"]
        metrics: WorkerMetrics = state["metrics"]
        async for events in stream.take_events(
            settings.batch_max_events, within=settings.batch_within_seconds
        ):
            try:
                await apply_events(processor, events, metrics)
                metrics.observe_lag(app.consumer, events)
            except Exception:
                # Faust acknowledges a take_events batch even when its body raises,
                # which would drop the batch. Exit before that can happen: the
                # offsets stay uncommitted and a restarted worker reapplies the
                # batch (the offset guard in Redis skips what was applied).
                log.critical(
                    "unexpected error applying a batch; exiting unacknowledged", exc_info=True
                )
                logging.shutdown()
                os._exit(EXIT_UNAPPLIED_BATCH)

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


async def apply_events(
    processor: BatchProcessor, events: Sequence[Any], metrics: WorkerMetrics | None = None
) -> None:
    """Split a Faust batch by partition and apply each part in offset order."""
    by_shard: dict[Shard, list[Record]] = defaultdict(list)
    for event in events:
        message = event.message
        by_shard[Shard(message.topic, message.partition)].append(
            Record(message.offset, bytes(message.value))
        )
    for shard, records in by_shard.items():
        records.sort(key=lambda record: record.offset)
        started = time.perf_counter()
        outcome = await processor.process(shard, records)
        if metrics is not None:
            metrics.observe_batch(shard, len(records), time.perf_counter() - started)
        log.debug(
            "shard %s: %d applied, %d already applied, %d rejected",
            shard.id,
            outcome.fresh,
            outcome.skipped,
            outcome.rejected,
        )
