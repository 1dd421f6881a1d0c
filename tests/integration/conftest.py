"""The real stack (Kafka, Redis, Prometheus) once per session, on free loopback ports.

``ops/stack.sh`` starts it (installing what is missing); a service that cannot
start fails the run. Each test gets its own topic, consumer group and Redis
prefix, and starts the worker and exporter it needs as real processes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from loadtest.generator import Produced, produce
from streams.store.clients import sync_client
from streams.views.promql import PrometheusClient
from tests.integration.clock import Clock, placed
from tests.integration.tls import TlsFiles, write_certs

ROOT = Path(__file__).resolve().parents[2]
SASL_PASSWORD = "kpi-test-secret"
STACK = ROOT / "ops" / "stack.sh"


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A free port from 10,000 to 15,999, not handed out before in this session.

    Below Linux's ephemeral range (32,768 and up): a port in it can be taken, between the
    pick and the bind, as the source port of any outgoing connection, and a process started
    later could not listen on it (every worker of a session crashed on its metrics port
    once). Below the local stack's own ports (16,379 and up) and the cluster's (20,000 up).
    """
    for _ in range(1000):
        port = 10_000 + int.from_bytes(os.urandom(2), "big") % 6_000
        if port not in _HANDED_OUT and _port_free(port):
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError("no free port from 10,000 to 15,999")


@dataclass
class Stack:
    env: dict[str, str]
    kafka: str
    redis_url: str
    prometheus_url: str
    exporter_port: int
    kafka_sasl: str
    started_in_s: float
    logs: Path
    tls: TlsFiles
    kafka_ssl: str
    kafka_sasl_ssl: str
    redis_tls_url: str

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, decode_responses=True)

    def prometheus(self) -> PrometheusClient:
        return PrometheusClient(self.prometheus_url)

    def run_stack(self, *args: str) -> None:
        subprocess.run([str(STACK), *args], env=self.env, check=True, timeout=300)


@pytest.fixture(scope="session")
def stack(
    tmp_path_factory: pytest.TempPathFactory, measure: Callable[[str, str], None]
) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("stack")
    ports = {
        name: free_port()
        for name in (
            "kafka",
            "controller",
            "redis",
            "prometheus",
            "exporter",
            "worker",
            "sasl",
            "ssl",
            "sasl_ssl",
            "redis_tls",
        )
    }
    tls = write_certs(base / "tls")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KPI_")}
    env.update(
        KPI_STACK_DIR=str(base),
        KPI_KAFKA_PORT=str(ports["kafka"]),
        KPI_KAFKA_CONTROLLER_PORT=str(ports["controller"]),
        KPI_REDIS_PORT=str(ports["redis"]),
        KPI_PROMETHEUS_PORT=str(ports["prometheus"]),
        KPI_EXPORTER_PORT=str(ports["exporter"]),
        KPI_WORKER_METRICS_PORT=str(ports["worker"]),
        KPI_KAFKA_SASL_PORT=str(ports["sasl"]),
        KPI_KAFKA_SASL_USERNAME="kpi",
        KPI_KAFKA_SASL_PASSWORD=SASL_PASSWORD,
        KPI_KAFKA_SSL_PORT=str(ports["ssl"]),
        KPI_KAFKA_SASL_SSL_PORT=str(ports["sasl_ssl"]),
        KPI_REDIS_TLS_PORT=str(ports["redis_tls"]),
        KPI_STACK_TLS_DIR=str(tls.folder),
        KPI_SCRAPE_INTERVAL="1s",
    )
    started = time.perf_counter()
    subprocess.run([str(STACK), "up"], env=env, check=True, timeout=600)
    stack = Stack(
        env=env,
        kafka=f"127.0.0.1:{ports['kafka']}",
        redis_url=f"redis://127.0.0.1:{ports['redis']}/0",
        prometheus_url=f"http://127.0.0.1:{ports['prometheus']}",
        exporter_port=ports["exporter"],
        kafka_sasl=f"127.0.0.1:{ports['sasl']}",
        started_in_s=time.perf_counter() - started,
        logs=base / "logs",
        tls=tls,
        kafka_ssl=f"127.0.0.1:{ports['ssl']}",
        kafka_sasl_ssl=f"127.0.0.1:{ports['sasl_ssl']}",
        redis_tls_url=f"rediss://127.0.0.1:{ports['redis_tls']}/0",
    )
    stack.logs.mkdir()
    measure("stack: seconds to bring Kafka, Redis, Prometheus up", f"{stack.started_in_s:.1f}")
    try:
        yield stack
    finally:
        subprocess.run([str(STACK), "down"], env=env, check=False, timeout=120)


@dataclass(frozen=True)
class Cluster:
    """The session's Redis Cluster: 3 masters and 3 replicas on ``ports``, and with TLS on
    ``tls_ports`` (the nodes' bus and replication over TLS)."""

    stack: Stack
    ports: tuple[int, ...]
    tls_ports: tuple[int, ...]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    @property
    def tls_url(self) -> str:
        return "rediss+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.tls_ports)

    @property
    def env(self) -> dict[str, str]:
        return {
            **self.stack.env,
            "KPI_REDIS_CLUSTER_PORT": str(self.ports[0]),
            "KPI_REDIS_CLUSTER_TLS_PORT": str(self.tls_ports[0]),
        }

    def pid(self, port: int) -> int:
        index = self.ports.index(port)
        return int(
            (Path(self.stack.env["KPI_STACK_DIR"]) / f"redis-cluster-{index}.pid").read_text()
        )

    def up(self) -> None:
        """Start what is not running; wait until every master has a replica again."""
        subprocess.run([str(STACK), "up", "redis-cluster"], env=self.env, check=True, timeout=180)


def _free_run(count: int, taken: frozenset[int] = frozenset()) -> int:
    """A first port with ``count`` free ports after it, and their cluster bus ports.

    Node and bus ports (10,000 above) stay below Linux's ephemeral range (32,768 and up):
    a port in it can be taken as the source port of any outgoing connection, and a
    killed node restarting could then not bind its bus port again (seen once).
    """
    for _ in range(200):
        first = 20_000 + int.from_bytes(os.urandom(2), "big") % (32_768 - 10_000 - 20_000 - count)
        ports = [first + i for i in range(count)] + [first + 10_000 + i for i in range(count)]
        if all(_port_free(port) and port not in taken for port in ports):
            return first
    raise RuntimeError("no run of free ports for the Redis Cluster")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.fixture(scope="session")
def redis_cluster(stack: Stack, measure: Callable[[str, str], None]) -> Iterator[Cluster]:
    """A Redis Cluster (``ops/stack.sh up redis-cluster``) on free ports, once per session."""
    first = _free_run(6)
    used = frozenset(p + bus for p in range(first, first + 6) for bus in (0, 10_000))
    first_tls = _free_run(6, taken=used)
    cluster = Cluster(stack, tuple(range(first, first + 6)), tuple(range(first_tls, first_tls + 6)))
    started = time.perf_counter()
    cluster.up()
    measure("stack: seconds to bring the Redis Cluster up", f"{time.perf_counter() - started:.1f}")
    try:
        yield cluster
    finally:
        subprocess.run(
            [str(STACK), "down", "redis-cluster"], env=cluster.env, check=False, timeout=120
        )


@pytest.fixture
def clock() -> Clock:
    """The test's clock: real, or placed where ``TEST_CLOCK_AT`` says (see clock.py)."""
    return placed()


def kpi_env(stack: Stack, clock: Clock, **settings: str) -> dict[str, str]:
    """Environment of a ``kpi`` subprocess on the test stack and clock, with a Redis prefix
    of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KPI_")}
    env.update(
        KPI_REDIS_URL=stack.redis_url,
        KPI_REDIS_PREFIX=f"k{uuid.uuid4().hex[:8]}",
        **clock.env(pythonpath=str(ROOT)),
    )
    env.update(settings)
    return env


def kpi(
    env: dict[str, str], *args: str, timeout_s: float = 900
) -> subprocess.CompletedProcess[str]:
    """Run ``kpi ARGS`` to completion, whatever its exit status."""
    return subprocess.run(
        [sys.executable, "-m", "streams", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def run_kpi(env: dict[str, str], *args: str, timeout_s: float = 900) -> str:
    """Run ``kpi ARGS`` to completion; fails the test on a non-zero exit; returns stderr."""
    result = kpi(env, *args, timeout_s=timeout_s)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stderr


EDGE_MARGIN_S = 1.0


def near_minute_edge(at: float) -> bool:
    """Whether ``at`` is too close to a minute boundary (and so to an hour's or a day's)
    to tell from a scrape's timestamp which side of it the exporter cut its windows on.

    Prometheus aligns a scrape's timestamp with its schedule within a few milliseconds,
    but a CI run once saw the exporter cut its windows before an hour's edge for a scrape
    stamped a fraction of a second after it (the cause not found; the exporter's clock is
    shifted by time-machine): a whole second either side is left to the next scrape.
    """
    second = at % 60
    return second < EDGE_MARGIN_S or second > 60 - EDGE_MARGIN_S


@dataclass(frozen=True)
class Scrape:
    """One Prometheus scrape of the exporter.

    Query at ``real_s`` (Prometheus's own, real timestamp) to read that scrape and no
    later one; the exporter cut its windows at ``at``, the same instant on the test clock.
    """

    real_s: float
    at: float


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def wait_log(self, text: str, timeout_s: float = 90) -> float:
        """Wait until the service's log shows ``text``; returns the seconds waited."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if text in self.log.read_text(errors="replace"):
                return time.monotonic() - started
            if self.process.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.process.returncode}:\n{self.tail()}")
            time.sleep(0.1)
        pytest.fail(f"{self.name} did not log {text!r} in {timeout_s}s:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Pipeline:
    """One test's slice of the stack: its own topic, group and prefix."""

    stack: Stack
    clock: Clock
    env: dict[str, str]
    topic: str
    prefix: str
    services: list[Service] = field(default_factory=list)

    def start(self, command: str) -> Service:
        n = sum(1 for s in self.services if s.name == command)
        log = self.stack.logs / f"{self.topic}-{command}-{n}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "streams", command],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        service = Service(command, process, log)
        self.services.append(service)
        return service

    def create_topics(self) -> None:
        subprocess.run(
            [sys.executable, "-m", "streams", "create-topics"],
            env=self.env,
            check=True,
            timeout=120,
            cwd=ROOT,
        )

    def topic_of(self, kind: str) -> str:
        """Topic name of a topic kind in this test."""
        return self.topic if kind == "clickstream" else f"{self.topic}-{kind}"

    def produce(
        self,
        messages: list[tuple[bytes, bytes]],
        pause_every: int = 0,
        pause_s: float = 0.0,
        kind: str = "clickstream",
        partitions: list[int] | None = None,
        client_kwargs: dict[str, Any] | None = None,
    ) -> Produced:
        return asyncio.run(
            produce(
                self.stack.kafka,
                self.topic_of(kind),
                messages,
                pause_every=pause_every,
                pause_s=pause_s,
                partitions=partitions,
                client_kwargs=client_kwargs,
            )
        )

    def wait_all_applied(
        self, produced: dict[str, dict[int, int]], timeout_s: float = 300
    ) -> float:
        """Wait until every topic's produced offsets are applied (``kind -> last offsets``)."""
        last = {}
        for kind, offsets in produced.items():
            for partition, offset in offsets.items():
                last[(self.topic_of(kind), partition)] = offset
        deadline = time.monotonic() + timeout_s
        client = self.redis()
        pending = list(last)
        while time.monotonic() < deadline:
            pending = [
                (t, p)
                for (t, p), off in last.items()
                if int(client.get(f"{self.prefix}:{{{t}.{p}}}:applied") or -1) < off
            ]
            if not pending:
                return time.perf_counter()
            for s in self.services:
                if s.name == "worker" and s.process.poll() is not None:
                    pytest.fail(f"worker exited with {s.process.returncode}:\n{s.tail()}")
            time.sleep(0.2)
        pytest.fail(f"offsets not applied in {timeout_s}s: {pending}")

    def redis(self) -> Any:
        """A client of the Redis this pipeline writes to (one node or the cluster)."""
        tls = {
            option: self.env[variable]
            for option, variable in (
                ("ssl_ca_certs", "KPI_REDIS_TLS_CAFILE"),
                ("ssl_certfile", "KPI_REDIS_TLS_CERTFILE"),
                ("ssl_keyfile", "KPI_REDIS_TLS_KEYFILE"),
            )
            if variable in self.env
        }
        return sync_client(self.env["KPI_REDIS_URL"], decode_responses=True, **tls)

    def applied_offsets_or_none(self, partition: int) -> int | None:
        """The clickstream partition's applied offset; None while Redis cannot answer."""
        try:
            return self.applied_offsets().get(partition)
        except (redis.RedisError, redis.exceptions.RedisClusterException):
            return None

    def applied_offsets(self) -> dict[int, int]:
        client = self.redis()
        out = {}
        for raw in client.smembers(f"{self.prefix}:shards"):
            topic, _, partition = str(raw).rpartition(".")
            if topic == self.topic:
                value = client.get(f"{self.prefix}:{{{raw}}}:applied")
                if value is not None:
                    out[int(partition)] = int(value)
        return out

    def wait_applied(self, last: dict[int, int], timeout_s: float = 180) -> float:
        """Wait until Redis holds every produced offset; returns when that happened."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            applied = self.applied_offsets()
            if all(applied.get(p, -1) >= off for p, off in last.items()):
                return time.perf_counter()
            for s in self.services:
                if (
                    s.name == "worker"
                    and s.process.poll() is not None
                    and s.process.returncode != -9
                ):
                    pytest.fail(f"worker exited with {s.process.returncode}:\n{s.tail()}")
            time.sleep(0.1)
        workers = [s for s in self.services if s.name == "worker"]
        pytest.fail(
            f"not all offsets applied in {timeout_s}s: want {last}, have {self.applied_offsets()}\n"
            + (workers[-1].tail() if workers else "")
        )

    def wait_scraped(self, last: dict[int, int], timeout_s: float = 60) -> Scrape:
        """Wait until Prometheus has scraped the final offsets; returns that scrape."""
        prom = self.stack.prometheus()
        want = sum(last.values())
        query = f'sum(shop_applied_offset{{topic="{self.topic}"}})'
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            got = prom.query(query)
            if got and got[0].value == want:
                stamp = prom.query(f'max(timestamp(shop_applied_offset{{topic="{self.topic}"}}))')
                at = self.clock.from_real(stamp[0].value)
                if not near_minute_edge(at):  # else the next scrape
                    return Scrape(stamp[0].value, at)
            time.sleep(0.5)
        pytest.fail(f"Prometheus never showed offsets {want} for {self.topic}: {prom.query(query)}")


@pytest.fixture
def pipeline(stack: Stack, clock: Clock) -> Iterator[Pipeline]:
    yield from _pipeline(stack, clock, stack.redis_url)


@pytest.fixture
def cluster_pipeline(stack: Stack, clock: Clock, redis_cluster: Cluster) -> Iterator[Pipeline]:
    """A pipeline whose worker, exporter and replay write to the Redis Cluster."""
    yield from _pipeline(stack, clock, redis_cluster.url)


def _pipeline(stack: Stack, clock: Clock, redis_url: str) -> Iterator[Pipeline]:
    tag = uuid.uuid4().hex[:8]
    topic = f"clicks-{tag}"
    prefix = f"t{tag}"
    env = dict(stack.env)
    for name in ("KPI_STACK_DIR", "KPI_SCRAPE_INTERVAL"):
        env.pop(name, None)
    for name in (
        "KPI_KAFKA_PORT",
        "KPI_KAFKA_CONTROLLER_PORT",
        "KPI_REDIS_PORT",
        "KPI_PROMETHEUS_PORT",
        "KPI_KAFKA_SASL_PORT",
        "KPI_KAFKA_SASL_USERNAME",
        "KPI_KAFKA_SASL_PASSWORD",
        "KPI_KAFKA_SSL_PORT",
        "KPI_KAFKA_SASL_SSL_PORT",
        "KPI_REDIS_TLS_PORT",
        "KPI_STACK_TLS_DIR",
    ):
        env.pop(name, None)
    env.update(
        KPI_KAFKA_BOOTSTRAP=stack.kafka,
        KPI_REDIS_URL=redis_url,
        KPI_REDIS_PREFIX=prefix,
        KPI_CLICKSTREAM_TOPIC=topic,
        KPI_ORDERS_TOPIC=f"{topic}-orders",
        KPI_CHAT_TOPIC=f"{topic}-chat",
        KPI_MARKETING_TOPIC=f"{topic}-marketing",
        KPI_DEAD_LETTER_TOPIC=f"{topic}-dead-letter",
        KPI_CONSUMER_GROUP=f"kpi-{tag}",
        KPI_FAUST_DATADIR=str(stack.logs / f"faust-{tag}"),
        KPI_EXPORTER_PORT=str(stack.exporter_port),
        KPI_PROMETHEUS_URL=stack.prometheus_url,
        KPI_KAFKA_SESSION_TIMEOUT_SECONDS="6",
        KPI_HEALTH_PROBE_SECONDS="1",
        **clock.env(pythonpath=str(ROOT)),
    )
    pipe = Pipeline(stack, clock, env, topic, prefix)
    try:
        yield pipe
    finally:
        for service in pipe.services:
            service.stop()


@pytest.fixture
def wait_for() -> Callable[..., None]:
    def wait(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        pytest.fail(f"timed out after {timeout_s}s waiting for {what}")

    return wait
