"""Benchmark: events/s of the worker against a ceiling, other ways and the previous commit.

    ./run bench                      # defaults below; or python -m loadtest.bench_throughput
    ./run bench --events 50000 --freshness-seconds 10 --memory-events 0

Page views: on one fresh 4-partition topic filled with generated page views,
each contender runs alone, as its own process with its own consumer group:
(a) a raw aiokafka consumer that only decodes (the ceiling), (a') a Faust
agent that only decodes, (b) a naive Faust agent writing to Redis per event,
(c) this project's ``kpi worker``, (p) the worker of ``--previous`` (a git
worktree), (d) Quix Streams (when the ``bench`` extra is installed); then two
workers in one group. Mixed: the four topics filled with generated shop traffic,
read by (a), (c) and (p). Workers also get Redis and CPU time per event. Then
``--profile`` (the worker under py-spy), freshness at a fixed rate, the time to
catch up a minute's backlog, peak memory, Redis memory and exporter scrape
time. Prints the tables and writes them as Markdown; asserts nothing. What each
figure means: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import shutil
from dataclasses import replace
from pathlib import Path

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
from loadtest.throughput.mixed import run_mixed
from loadtest.throughput.previous import previous_checkout
from loadtest.throughput.profile import profile_table, profile_worker, py_spy
from loadtest.throughput.redis_memory import delete_prefix, key_census, redis_row, used_memory
from loadtest.throughput.report import Table, machine, number, write_markdown
from loadtest.throughput.rows import add_contender, catch_up_row, throughput_table
from loadtest.throughput.worker import run_workers
from streams.common.settings import Settings


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


def arguments(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=300_000, help="events per throughput run")
    parser.add_argument(
        "--rate",
        type=float,
        default=20_000,
        help="events/s of the freshness run; also the peak rate of the catch-up figures",
    )
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
        "--previous",
        default="HEAD~1",
        help="commit whose worker runs beside this checkout's (a git worktree; '' skips it)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="run the page-view worker once more under py-spy"
    )
    parser.add_argument(
        "--markdown", type=Path, default=Path("docs/benchmarks-latest.md"), help="output file"
    )
    parser.add_argument("--keep", action="store_true", help="keep topics, Redis keys and logs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run every phase, print the tables and write the Markdown file."""
    args = arguments(argv)
    bench = start_run(args.events)
    base, run_id, work, client, timeout = bench

    throughput = throughput_table(
        f"Throughput, page views ({args.events:,} generated page views, 4 partitions)"
    )
    mixed_table = throughput_table("Throughput, mixed workload")
    figures = Table("Freshness, catch-up, memory, scrape", ["measure", "value", "target"])
    tables = [throughput, mixed_table, figures]
    ok = False
    try:
        with previous_checkout(args.previous) as previous:
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
            results.append(replace(naive, note=f"PV in Redis {naive_pv:,}"))

            say("(c) kpi worker")
            before = used_memory(client)
            one = run_workers(client, tp, filled.last_offsets, 1, work, "(c) kpi worker", timeout)
            redis_delta = used_memory(client) - before
            with Exporter(tp, work) as exporter:
                check = totals(exporter, tp.clickstream_topic)
                scrape = time_scrapes(exporter, args.scrapes)
            census = key_census(client, tp.redis_prefix)
            worker = replace(
                one.contender,
                note=f"PV {number(check['pv_30m'])}, consumed {number(check['consumed'])}, "
                f"UV {number(check['uv_30m'])} (exact {filled.visitors:,})",
            )
            results.append(worker)

            prev: Contender | None = None
            if previous is not None:
                say(f"(p) kpi worker at {previous.label}")
                prev = run_workers(
                    client,
                    tp.replace(
                        consumer_group=f"{run_id}-tp-prev", redis_prefix=f"{run_id}-tp-prev"
                    ),
                    filled.last_offsets,
                    1,
                    work,
                    f"(p) kpi worker at {previous.label}",
                    timeout,
                    code=previous.path,
                ).contender
                prev = replace(prev, note="")
                results.append(prev)

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
                    replace(
                        quix,
                        note=f"PV {done.extra['pv']:,}, per-minute UV summed "
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
            results.append(replace(two.contender, note=f"{scale:.2f} x one worker"))

            for c in results:
                add_contender(throughput, c, ceiling, prev if c is worker else None)

            mixed = run_mixed(bench, args.events, args.seed + 2000, previous)
            mixed_table.title = (
                f"Throughput, mixed workload ({mixed.filled.events:,} generated shop events: "
                f"{mixed.filled.shares()}; 4 topics of 4 partitions)"
            )
            add_contender(mixed_table, mixed.ceiling, mixed.ceiling)
            add_contender(mixed_table, mixed.worker, mixed.ceiling, mixed.previous)
            if mixed.previous is not None:
                add_contender(mixed_table, mixed.previous, mixed.ceiling)

        if args.profile:
            spy = py_spy()
            if spy is None:
                say("profile skipped: py-spy is not installed (pip install -e '.[bench]')")
            else:
                say("profile: kpi worker on the page views under py-spy")
                prof = tp.replace(
                    consumer_group=f"{run_id}-tp-profile", redis_prefix=f"{run_id}-tp-prof"
                )
                summary, profiled = profile_worker(
                    client, prof, filled.last_offsets, work, timeout, spy
                )
                tables.append(
                    profile_table(
                        summary,
                        f"Profile of kpi worker, page views (py-spy --idle, "
                        f"{number(profiled.contender.rate)} events/s while sampled), main thread",
                    )
                )

        say(f"freshness: {args.rate:,.0f} events/s for {args.freshness_seconds:.0f}s")
        fresh_settings, _ = prepare(base, run_id, "fresh", 0, args.seed)
        fresh = measure(
            client, fresh_settings, args.rate, args.freshness_seconds, args.warmup, work
        )
        summary_ = fresh.summary()
        figures.add(
            "freshness run: rate sent",
            f"{number(fresh.rate_sent)} events/s ({fresh.seconds:.0f} s with the warm-up)",
            f"{number(fresh.rate_target)} events/s",
        )
        figures.add(
            "event → Redis freshness p50 / p99",
            f"{summary_['redis_p50']:.3f} s / {summary_['redis_p99']:.3f} s",
            "p99 ≤ 1 s",
        )
        figures.add(
            "event → Prometheus freshness p50 / p99 (1 s scrape)",
            f"{summary_['prom_p50']:.3f} s / {summary_['prom_p99']:.3f} s",
            "—",
        )
        figures.add(
            "consumer lag min / median / max (events, 1/s)",
            " / ".join(number(summary_[k]) for k in ("lag_min", "lag_median", "lag_max")),
            "—",
        )
        figures.add(*catch_up_row("page views", args.rate, worker.rate))
        figures.add(*catch_up_row("mixed", args.rate, mixed.worker.rate))
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
            figures.add(
                *redis_row(
                    args.memory_events, mem_filled.visitors, mem_census, mem_delta, "page views, "
                )
            )
        figures.add(*redis_row(args.events, filled.visitors, census, redis_delta, "page views, "))
        figures.add(
            *redis_row(
                mixed.filled.events,
                mixed.filled.visitors,
                mixed.census,
                mixed.redis_delta,
                "mixed, ",
            )
        )
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
        f"--freshness-seconds {args.freshness_seconds:.0f} --memory-events {args.memory_events} "
        f"--previous '{args.previous}'{' --profile' if args.profile else ''}`"
    )
    print()
    print(header.replace("`", ""))
    for table in tables:
        print()
        print(table.text())
    write_markdown(args.markdown, header, tables)
    say(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
