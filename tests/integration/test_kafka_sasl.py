"""The whole path over Kafka SASL/SCRAM-SHA-256: topics, worker and producer authenticate."""

from __future__ import annotations

import subprocess
import sys

import pytest

from loadtest.generator import generate
from streams.common.settings import Settings
from streams.ingest.kafka_auth import client_kwargs
from tests.integration.conftest import ROOT, SASL_PASSWORD, Pipeline

pytestmark = pytest.mark.integration


def test_worker_consumes_over_sasl_scram(pipeline: Pipeline) -> None:
    pipeline.env.update(
        KPI_KAFKA_BOOTSTRAP=pipeline.stack.kafka_sasl,
        KPI_KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
        KPI_KAFKA_SASL_MECHANISM="SCRAM-SHA-256",
        KPI_KAFKA_SASL_USERNAME="kpi",
        KPI_KAFKA_SASL_PASSWORD=SASL_PASSWORD,
    )
    settings = Settings.from_env({k: v for k, v in pipeline.env.items() if k.startswith("KPI_")})
    pipeline.create_topics()
    pipeline.start("worker").wait_log("Worker ready")
    generated = generate(2_000, pipeline.clock.now_ms() - 60_000, 50, seed=5)
    produced = asyncio_produce(pipeline, generated.messages, settings)
    pipeline.wait_applied(produced, timeout_s=120)
    assert sum(o + 1 for o in pipeline.applied_offsets().values()) == 2_000

    wrong = dict(pipeline.env, KPI_KAFKA_SASL_PASSWORD="not-the-password")
    refused = subprocess.run(
        [sys.executable, "-m", "streams", "create-topics", "--wait", "5"],
        env=wrong,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert refused.returncode == 2
    assert "cannot reach Kafka" in refused.stderr and "not-the-password" not in refused.stderr


def asyncio_produce(
    pipeline: Pipeline, messages: list[tuple[bytes, bytes]], settings: Settings
) -> dict[int, int]:
    """Produce over SASL with the service's own client settings."""
    import asyncio

    from loadtest.generator import produce

    result = asyncio.run(
        produce(
            settings.kafka_bootstrap,
            pipeline.topic,
            messages,
            client_kwargs=client_kwargs(settings),
        )
    )
    return result.last_offsets
