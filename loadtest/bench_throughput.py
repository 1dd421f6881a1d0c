"""Benchmark: events/s of the worker against a ceiling and two other ways, freshness, footprint.

    ./run bench                      # defaults below; or python -m loadtest.bench_throughput
    ./run bench --events 50000 --freshness-seconds 10 --memory-events 0

On one fresh 4-partition topic filled with generated page views, each
contender runs alone, as its own process with its own consumer group:
(a) a raw aiokafka consumer that only decodes (the ceiling), (b) a naive
Faust agent writing to Redis per event, (c) this project's ``kpi worker``,
(d) Quix Streams (when the ``bench`` extra is installed); then two workers
in one group. Then freshness at a fixed rate, peak memory, Redis memory and
exporter scrape time. Prints the tables and writes them as Markdown; asserts
nothing. What each figure means: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import redis

from loadtest.throughput.common import Contender, say, start_run
from loadtest.throughput.contenders import run_module
from loadtest.throughput.exporter import Exporter, time_scrapes, totals
from loadtest.throughput.freshness import measure
from loadtest.throughput.kafka import (
    Filled,
    create_run_topics,
    delete_run_topics,
    fill,
    run_settings,
    wait_for_partitions,
)
from loadtest.throughput.report import Table, machine, number, write_markdown
from loadtest.throughput.worker import run_workers
from streams.settings import Settings


def prepare(
    base: Settings, run_id: str, name: str, events: int, seed: int
) -> tuple[Settings, Filled | None]:
    """Fresh topics for one phase, filled with ``events`` generated page views (0: left empty)."""
    settings = run_settings(base, run_id, name)
    asyncio.run(create_run_topics(settings))
    asyncio.run(wait_for_partitions(settings.kafka_bootstrap, settings.clickstream_topic))
    if not events:
        return settings, None
    say(f"producing {events:,} page views to {settings.clickstream_topic}")
    filled = asyncio.run(
        fill(settings.kafka_bootstrap, settings.clickstream_topic, events, seed, name == "tp")
    )
    say(f"produced in {filled.seconds:.1f}s ({filled.events / filled.seconds:,.0f}/s)")
    return settings, filled


def used_memory(client: redis.Redis) -> int:
    """Redis ``used_memory`` in bytes."""
    info = client.info("memory")
    return int(info["used_memory"])


@dataclass(frozen=True)
class KeyCensus:
    """The keys under one prefix: how many, their summed ``MEMORY USAGE``, which never expire."""

    keys: int
    bytes: int
    unexpiring: int
    unexpiring_kinds: list[str]
    bytes_by_kind: Counter[str]


def key_census(client: redis.Redis, prefix: str) -> KeyCensus:
    """Count and size the keys under ``prefix`` (other users of the same Redis do not count)."""
    keys = list(client.scan_iter(f"{prefix}:*", count=10_000))
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.ttl(key)
        pipe.memory_usage(key, samples=0)
    answers = pipe.execute()
    kinds: Counter[str] = Counter()
    by_kind: Counter[str] = Counter()
    size = 0
    for key, ttl, usage in zip(keys, answers[::2], answers[1::2], strict=True):
        size += int(usage or 0)
        by_kind[_kind(key.decode(), prefix)] += int(usage or 0)
        if ttl == -1:
            kinds[_kind(key.decode(), prefix)] += 1
    return KeyCensus(len(keys), size, sum(kinds.values()), sorted(kinds), by_kind)


def _kind(key: str, prefix: str) -> str:
    """Kind of a key, as in streams/keys.py: ``P:{S}:s:session`` -> ``s:session``."""
    rest = key.split("}:", 1)[1] if "}:" in key else key.removeprefix(prefix + ":")
    parts = rest.split(":")
    return ":".join(parts[:2]) if parts[0] in ("s", "t", "z") else parts[0]


KIND_NAMES = {
    "b": "counters",
    "u": "HyperLogLogs",
    "r": "rankings",
    "seen": "event ids",
    "s:session": "sessions",
}


def redis_row(events: int, visitors: int, census: KeyCensus, delta: int) -> tuple[str, str, str]:
    """Redis memory per million visitors, from the run's keys and from ``used_memory``."""
    per_million = 1e6 / visitors / 2**20
    largest = ", ".join(
        f"{KIND_NAMES.get(kind, kind)} {100 * n / max(1, census.bytes):.0f} %"
        for kind, n in census.bytes_by_kind.most_common(3)
    )
    return (
        f"Redis memory per 1 M visitors ({events:,} events, {visitors:,} visitors)",
        f"{census.bytes * per_million:,.0f} MiB (keys; largest: {largest}); used_memory delta "
        f"{delta * per_million:,.0f} MiB",
        "bounded by TTLs",
    )


def delete_prefix(client: redis.Redis, prefix: str) -> int:
    """SCAN and DEL every key under ``prefix``."""
    deleted = 0
    batch = []
    for key in client.scan_iter(f"{prefix}*", count=10_000):
        batch.append(key)
        if len(batch) >= 1000:
            deleted += int(client.delete(*batch))
            batch.clear()
    if batch:
        deleted += int(client.delete(*batch))
    return deleted


def main(argv: list[str] | None = None) -> int:
    """Run every phase, print the tables and write the Markdown file."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=300_000, help="events per throughput run")
    parser.add_argument("--rate", type=float, default=20_000, help="events/s of the freshness run")
    parser.add_argument("--freshness-seconds", type=float, default=30, help="sampled seconds")
    parser.add_argument("--warmup", type=float, default=5, help="seconds before sampling starts")
    parser.add_argument(
        "--memory-events",
        type=int,
        default=1_000_000,
        help="events of the peak-memory run (the target is stated for 10,000,000; 0 skips it)",
    )
    parser.add_argument("--scrapes", type=int, default=100, help="timed GET /metrics")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument(
        "--markdown", type=Path, default=Path("docs/benchmarks-latest.md"), help="output file"
    )
    parser.add_argument("--keep", action="store_true", help="keep topics, Redis keys and logs")
    args = parser.parse_args(argv)

    base, run_id, work, client, timeout = start_run(args.events)

    throughput = Table(
        f"Throughput ({args.events:,} generated page views, 4 partitions)",
        ["contender", "events timed", "seconds", "events/s", "ratio to ceiling", "note"],
    )
    figures = Table("Freshness, memory, scrape", ["measure", "value", "target"])
    ok = False
    try:
        tp, filled = prepare(base, run_id, "tp", args.events, args.seed)
        assert filled is not None
        common = [
            "--bootstrap",
            tp.kafka_bootstrap,
            "--topic",
            tp.clickstream_topic,
            "--events",
            str(args.events),
        ]
        results: list[Contender] = []

        say("(a) ceiling: aiokafka getmany + decode")
        ceiling, _ = run_module(
            "(a) ceiling: aiokafka + decode",
            "loadtest.throughput.ceiling",
            [*common, "--group", f"{run_id}-ceiling"],
            work,
            timeout,
        )
        results.append(ceiling)

        say("(a') Faust agent, take_events + decode")
        faust_stream, _ = run_module(
            "(a') Faust take_events + decode",
            "loadtest.throughput.faust_stream",
            [*common, "--group", f"{run_id}-faust-stream"],
            work,
            timeout,
        )
        results.append(faust_stream)

        say("(b) naive Faust agent, Redis per event")
        naive_prefix = f"{run_id}-naive"
        naive, _ = run_module(
            "(b) naive Faust, Redis per event",
            "loadtest.throughput.naive_faust",
            [
                *common,
                "--group",
                f"{run_id}-naive",
                "--redis-url",
                tp.redis_url,
                "--prefix",
                naive_prefix,
            ],
            work,
            timeout,
        )
        naive_pv = sum(int(v) for v in client.hvals(f"{naive_prefix}:pv"))
        results.append(
            Contender(naive.name, naive.events, naive.seconds, f"PV in Redis {naive_pv:,}")
        )

        say("(c) kpi worker")
        before = used_memory(client)
        one = run_workers(client, tp, filled.last_offsets, 1, work, "(c) kpi worker", timeout)
        redis_delta = used_memory(client) - before
        with Exporter(tp, work) as exporter:
            check = totals(exporter, tp.clickstream_topic)
            scrape = time_scrapes(exporter, args.scrapes)
        census = key_census(client, tp.redis_prefix)
        results.append(
            Contender(
                one.contender.name,
                one.contender.events,
                one.contender.seconds,
                f"PV {number(check['pv_30m'])}, consumed {number(check['consumed'])}, "
                f"UV {number(check['uv_30m'])} (exact {filled.visitors:,})",
            )
        )

        if importlib.util.find_spec("quixstreams") is not None:
            say("(d) Quix Streams")
            quix, done = run_module(
                "(d) Quix Streams, 1-min windows",
                "loadtest.throughput.quix",
                [*common, "--group", f"{run_id}-quix"],
                work,
                timeout,
            )
            results.append(
                Contender(
                    quix.name,
                    quix.events,
                    quix.seconds,
                    f"PV {done.extra['pv']:,}, per-minute UV summed "
                    f"{done.extra['uv_minutes']:,} (exact {filled.visitor_minutes:,})",
                )
            )
        else:
            say("(d) skipped: quixstreams is not installed (pip install -e '.[bench]')")

        say("scale-out: two kpi workers in one group")
        tp2 = tp.replace(consumer_group=f"{run_id}-tp-worker2", redis_prefix=f"{run_id}-tp2")
        two = run_workers(
            client, tp2, filled.last_offsets, 2, work, "(c) kpi worker, 2 processes", timeout
        )
        scale = two.contender.rate / one.contender.rate
        results.append(
            Contender(
                two.contender.name,
                two.contender.events,
                two.contender.seconds,
                f"{scale:.2f} x one worker",
            )
        )

        for c in results:
            throughput.add(
                c.name,
                number(c.events),
                number(c.seconds, 2),
                number(c.rate),
                number(c.rate / ceiling.rate, 2),
                c.note,
            )

        say(f"freshness: {args.rate:,.0f} events/s for {args.freshness_seconds:.0f}s")
        fresh_settings, _ = prepare(base, run_id, "fresh", 0, args.seed)
        fresh = measure(
            client, fresh_settings, args.rate, args.freshness_seconds, args.warmup, work
        )
        summary = fresh.summary()
        figures.add(
            "freshness run: rate sent",
            f"{number(fresh.rate_sent)} events/s ({fresh.seconds:.0f} s with the warm-up)",
            f"{number(fresh.rate_target)} events/s",
        )
        figures.add(
            "event → Redis freshness p50 / p99",
            f"{summary['redis_p50']:.3f} s / {summary['redis_p99']:.3f} s",
            "p99 ≤ 1 s",
        )
        figures.add(
            "event → Prometheus freshness p50 / p99 (1 s scrape)",
            f"{summary['prom_p50']:.3f} s / {summary['prom_p99']:.3f} s",
            "—",
        )
        figures.add(
            "consumer lag min / median / max (events, 1/s)",
            " / ".join(number(summary[k]) for k in ("lag_min", "lag_median", "lag_max")),
            "—",
        )
        figures.add(
            "worker peak memory (VmHWM) after the throughput run", f"{one.peak_mb[0]:.0f} MiB", "—"
        )

        if args.memory_events:
            say(f"memory: {args.memory_events:,} events through one worker")
            mem, mem_filled = prepare(base, run_id, "mem", args.memory_events, args.seed + 1000)
            assert mem_filled is not None
            before_mem = used_memory(client)
            big = run_workers(
                client,
                mem,
                mem_filled.last_offsets,
                1,
                work,
                "memory",
                max(timeout, args.memory_events / 1_000),
            )
            mem_delta = used_memory(client) - before_mem
            mem_census = key_census(client, mem.redis_prefix)
            figures.add(
                f"worker peak memory (VmHWM) after {args.memory_events:,} events",
                f"{big.peak_mb[0]:.0f} MiB",
                "≤ 300 MiB after 10,000,000",
            )
            figures.add(*redis_row(args.memory_events, mem_filled.visitors, mem_census, mem_delta))
        figures.add(*redis_row(args.events, filled.visitors, census, redis_delta))
        figures.add(
            "worker keys without an expiry (throughput run)",
            f"{census.unexpiring:,} of {census.keys:,}: {', '.join(census.unexpiring_kinds)}",
            "only offsets, counters, state",
        )
        figures.add(
            f"exporter scrape median / p99 ({scrape.scrapes} GETs)",
            f"{scrape.median_ms:.1f} ms / {scrape.p99_ms:.1f} ms at {scrape.series:,} series",
            "≤ 50 ms at 2,000 series",
        )
        ok = True
    finally:
        if not args.keep:
            say("cleaning up: Redis keys and Kafka topics of this run")
            deleted = delete_prefix(client, run_id)
            topics = asyncio.run(delete_run_topics(base.kafka_bootstrap, run_id))
            say(f"deleted {deleted:,} Redis keys and {len(topics)} topics")
            if ok:
                shutil.rmtree(work, ignore_errors=True)

    header = (
        f"Machine: {machine()}.\n\n"
        f"`./run bench --events {args.events} --rate {args.rate:.0f} "
        f"--freshness-seconds {args.freshness_seconds:.0f} --memory-events {args.memory_events}`"
    )
    print()
    print(header.replace("`", ""))
    for table in (throughput, figures):
        print()
        print(table.text())
    write_markdown(args.markdown, header, [throughput, figures])
    say(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
