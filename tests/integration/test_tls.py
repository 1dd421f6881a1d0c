"""Every hop encrypted: Kafka over SSL and SASL_SSL, Redis over TLS (one node with a client
certificate, the cluster without), both metrics endpoints over HTTPS with basic auth; and
wrong or missing certificates refused at start in one line.

The session's certificates come from ``tests/integration/tls.py``; the stack's listeners
from ``ops/stack.sh`` (``KPI_KAFKA_SSL_PORT``, ``KPI_KAFKA_SASL_SSL_PORT``,
``KPI_REDIS_TLS_PORT``, ``KPI_REDIS_CLUSTER_TLS_PORT``).
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from loadtest.generator import Generated, generate, produce
from streams.common.settings import Settings
from streams.ingest.kafka_auth import client_kwargs
from tests.integration.clock import Clock
from tests.integration.conftest import (
    ROOT,
    SASL_PASSWORD,
    Cluster,
    Pipeline,
    Stack,
    _pipeline,
    free_port,
    kpi,
)

pytestmark = pytest.mark.integration

AUTH = ("prometheus", "scrape-secret")


def _settings(env: dict[str, str]) -> Settings:
    return Settings.from_env({k: v for k, v in env.items() if k.startswith("KPI_")})


def _produce_over(pipeline: Pipeline, env: dict[str, str], generated: Generated) -> dict[int, int]:
    """Produce with the service's own client settings from ``env`` (its bootstrap, TLS)."""
    settings = _settings(env)
    result = asyncio.run(
        produce(
            settings.kafka_bootstrap,
            pipeline.topic,
            generated.messages,
            client_kwargs=client_kwargs(settings),
        )
    )
    return result.last_offsets


def _get(port: int, stack: Stack, auth: tuple[str, str] | None) -> tuple[int, str]:
    """GET https://127.0.0.1:port/metrics, trusting the session's CA."""
    request = urllib.request.Request(f"https://127.0.0.1:{port}/metrics")
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    context = ssl.create_default_context(cafile=str(stack.tls.ca))
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def _scrape(port: int, stack: Stack, timeout_s: float = 30) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            status, body = _get(port, stack, AUTH)
            assert status == 200
            return body
        except (urllib.error.URLError, ConnectionError):
            assert time.monotonic() < deadline, f"nothing served on {port} in {timeout_s}s"
            time.sleep(0.2)


def _page_views_30m(body: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(body)
        if family.name == "shop_page_views_by_channel"
        for sample in family.samples
        if sample.labels.get("window") == "30m"
    )


def _served_over_tls(env: dict[str, str], stack: Stack) -> dict[str, str]:
    """Both metrics endpoints over HTTPS with basic auth, on ports of their own."""
    return dict(
        env,
        KPI_EXPORTER_PORT=str(free_port()),
        KPI_WORKER_METRICS_PORT=str(free_port()),
        KPI_EXPORTER_TLS_CERT=str(stack.tls.server_cert),
        KPI_EXPORTER_TLS_KEY=str(stack.tls.server_key),
        KPI_EXPORTER_BASIC_AUTH_USER=AUTH[0],
        KPI_EXPORTER_BASIC_AUTH_PASSWORD=AUTH[1],
    )


def test_worker_over_sasl_ssl_to_redis_tls_with_a_client_certificate(pipeline: Pipeline) -> None:
    stack = pipeline.stack
    pipeline.env.update(
        _served_over_tls(pipeline.env, stack),
        KPI_KAFKA_BOOTSTRAP=stack.kafka_sasl_ssl,
        KPI_KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        KPI_KAFKA_SASL_MECHANISM="SCRAM-SHA-256",
        KPI_KAFKA_SASL_USERNAME="kpi",
        KPI_KAFKA_SASL_PASSWORD=SASL_PASSWORD,
        KPI_KAFKA_SSL_CAFILE=str(stack.tls.ca),
        KPI_REDIS_URL=stack.redis_tls_url,
        KPI_REDIS_TLS_CAFILE=str(stack.tls.ca),
        KPI_REDIS_TLS_CERTFILE=str(stack.tls.client_cert),
        KPI_REDIS_TLS_KEYFILE=str(stack.tls.client_key),
    )
    pipeline.create_topics()
    pipeline.start("worker").wait_log("Worker ready")
    pipeline.start("exporter")
    generated = generate(2_000, pipeline.clock.now_ms() - 60_000, 50, seed=5)
    # The producer over the plain-TLS listener, the worker over SASL_SSL.
    producer_env = dict(
        pipeline.env,
        KPI_KAFKA_BOOTSTRAP=stack.kafka_ssl,
        KPI_KAFKA_SECURITY_PROTOCOL="SSL",
    )
    produced = _produce_over(pipeline, producer_env, generated)
    pipeline.wait_applied(produced, timeout_s=120)
    assert sum(o + 1 for o in pipeline.applied_offsets().values()) == 2_000

    exporter_body = _scrape(int(pipeline.env["KPI_EXPORTER_PORT"]), stack)
    assert _page_views_30m(exporter_body) == generated.truth.events
    worker_port = int(pipeline.env["KPI_WORKER_METRICS_PORT"])
    assert "shop_worker_batch_records_count" in _scrape(worker_port, stack)
    assert _get(worker_port, stack, (AUTH[0], "wrong"))[0] == 401
    assert _get(worker_port, stack, None)[0] == 401
    with pytest.raises((urllib.error.URLError, ConnectionError)):  # no plain HTTP
        urllib.request.urlopen(f"http://127.0.0.1:{worker_port}/metrics", timeout=5)

    wrong = dict(pipeline.env, KPI_KAFKA_SASL_PASSWORD="not-the-password")
    refused = kpi(wrong, "create-topics", "--wait", "5")
    assert refused.returncode == 2
    assert "cannot reach Kafka" in refused.stderr and "not-the-password" not in refused.stderr


@pytest.fixture
def tls_cluster_pipeline(stack: Stack, clock: Clock, redis_cluster: Cluster) -> Iterator[Pipeline]:
    """A pipeline writing to the Redis Cluster's TLS ports, trusting the session's CA."""
    for pipe in _pipeline(stack, clock, redis_cluster.tls_url):
        pipe.env["KPI_REDIS_TLS_CAFILE"] = str(stack.tls.ca)
        yield pipe


def test_replay_and_worker_over_ssl_into_the_cluster_over_tls(
    tls_cluster_pipeline: Pipeline,
) -> None:
    pipeline = tls_cluster_pipeline
    stack = pipeline.stack
    pipeline.env.update(
        KPI_KAFKA_BOOTSTRAP=stack.kafka_ssl,
        KPI_KAFKA_SECURITY_PROTOCOL="SSL",
        KPI_KAFKA_SSL_CAFILE=str(stack.tls.ca),
    )
    pipeline.create_topics()
    generated = generate(3_000, pipeline.clock.now_ms() - 90_000, 80, seed=11)
    produced = _produce_over(pipeline, pipeline.env, generated)
    assert sum(o + 1 for o in produced.values()) == 3_000
    replayed = kpi(pipeline.env, "replay", "--kafka-topic", pipeline.topic, "--from-offset", "0")
    assert replayed.returncode == 0, replayed.stderr[-2000:]
    assert pipeline.applied_offsets() == produced

    # Then the worker, over the same hops, takes what the replay had not seen.
    pipeline.env.update(_served_over_tls(pipeline.env, stack))
    pipeline.start("worker").wait_log("Worker ready")
    more = generate(1_000, pipeline.clock.now_ms() - 30_000, 20, seed=12)
    produced = _produce_over(pipeline, pipeline.env, more)
    pipeline.wait_applied(produced, timeout_s=120)
    assert sum(o + 1 for o in pipeline.applied_offsets().values()) == 4_000

    pipeline.start("exporter")
    body = _scrape(int(pipeline.env["KPI_EXPORTER_PORT"]), stack)
    assert _page_views_30m(body) == generated.truth.events + more.truth.events


# (command, settings, words the one line must hold); paths name files of stack.tls.
CASES = {
    "kafka: the broker's CA not trusted": (
        "worker",
        {"KPI_KAFKA_SECURITY_PROTOCOL": "SSL", "KPI_KAFKA_SSL_CAFILE": "wrong_ca"},
        ("Kafka at", "not trusted", "KPI_KAFKA_SSL_CAFILE"),
    ),
    "kafka: TLS to a plain listener": (
        "worker",
        {"KPI_KAFKA_SECURITY_PROTOCOL": "SSL", "KPI_KAFKA_SSL_CAFILE": "ca", "plain_kafka": ""},
        ("Kafka at", "TLS handshake failed", "is this a TLS port?"),
    ),
    "redis: the server's CA not trusted": (
        "exporter",
        {"KPI_REDIS_TLS_CAFILE": "wrong_ca"},
        ("Redis at", "not trusted", "KPI_REDIS_TLS_CAFILE"),
    ),
    "redis: a client certificate from another CA": (
        "worker",
        {
            "KPI_REDIS_TLS_CAFILE": "ca",
            "KPI_REDIS_TLS_CERTFILE": "wrong_client_cert",
            "KPI_REDIS_TLS_KEYFILE": "wrong_client_key",
        },
        ("Redis at", "refused the TLS connection", "KPI_REDIS_TLS_CERTFILE"),
    ),
    "redis: a key that does not match the certificate": (
        "replay",
        {
            "KPI_REDIS_TLS_CAFILE": "ca",
            "KPI_REDIS_TLS_CERTFILE": "client_cert",
            "KPI_REDIS_TLS_KEYFILE": "wrong_client_key",
        },
        ("KPI_REDIS_TLS_KEYFILE", "not a PEM certificate with its matching key"),
    ),
    "redis: a CA file that is missing": (
        "exporter",
        {"KPI_REDIS_TLS_CAFILE": "missing"},
        ("KPI_REDIS_TLS_CAFILE", "cannot read the file"),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_wrong_certificates_give_one_line(
    stack: Stack, clock: Clock, redis_cluster: Cluster, case: str
) -> None:
    command, settings, words = CASES[case]
    env = {
        k: v
        for k, v in _pipeline_env(stack, clock).items()
        if not k.startswith(("KPI_KAFKA_SASL", "KPI_REDIS_TLS"))
    }
    kafka = settings.get("KPI_KAFKA_SECURITY_PROTOCOL")
    env["KPI_KAFKA_BOOTSTRAP"] = (
        stack.kafka if "plain_kafka" in settings or not kafka else stack.kafka_ssl
    )
    env["KPI_REDIS_URL"] = stack.redis_tls_url if not kafka else stack.redis_url
    if command == "replay":
        env["KPI_REDIS_URL"] = redis_cluster.tls_url
    for name, value in settings.items():
        if name.startswith("KPI_"):
            env[name] = (
                str(stack.tls.folder / "missing.pem")
                if value == "missing"
                else str(getattr(stack.tls, value))
                if value and hasattr(stack.tls, value)
                else value
            )
    args = ("replay", str(ROOT / "README.md")) if command == "replay" else (command,)
    started = time.monotonic()
    result = kpi(env, *args)
    seconds = time.monotonic() - started
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith(f"kpi {command}: ")
    assert all(word in lines[0] for word in words), lines[0]
    assert "Traceback" not in result.stderr
    assert seconds < 30, f"{seconds:.1f} s to refuse"


def _pipeline_env(stack: Stack, clock: Clock) -> dict[str, str]:
    for pipe in _pipeline(stack, clock, stack.redis_url):
        return dict(pipe.env)
    raise AssertionError("no pipeline")
