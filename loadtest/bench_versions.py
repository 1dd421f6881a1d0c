"""Benchmark: ``kpi worker`` of this checkout against the worker of another commit, side by side.

    ./run up
    git worktree add /tmp/kpi-before HEAD~1
    python -m loadtest.bench_versions --other /tmp/kpi-before --events 300000 --rounds 3

One topic is filled once with generated page views; then each round runs one
worker of each version (alternating which goes first) from the start of the topic,
each with its own consumer group and Redis prefix, timed like contender (c) of
``loadtest.bench_throughput`` (first applied batch to the last). Machines are
shared and noisy, so the figure to read is the ratio of the medians, measured in
one run. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from pathlib import Path

from loadtest.throughput.common import say, start_run
from loadtest.throughput.kafka import (
    create_run_topics,
    delete_run_topics,
    fill,
    run_settings,
    wait_for_partitions,
)
from loadtest.throughput.report import Table, machine, number
from loadtest.throughput.worker import run_workers

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    """Fill a topic, run both workers ``--rounds`` times, print events/s and the ratio."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--other", type=Path, required=True, help="checkout of the other commit")
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    if not (args.other / "streams" / "cli.py").is_file():
        parser.error(f"{args.other} holds no streams/cli.py (a checkout of this project?)")

    base, run_id, work, client, timeout = start_run(args.events)
    topic = run_settings(base, run_id, "v")
    asyncio.run(create_run_topics(topic))
    asyncio.run(wait_for_partitions(topic.kafka_bootstrap, topic.clickstream_topic))
    say(f"producing {args.events:,} page views")
    filled = asyncio.run(
        fill(topic.kafka_bootstrap, topic.clickstream_topic, args.events, args.seed, False)
    )
    versions = {"this checkout": ROOT, f"other ({args.other})": args.other.resolve()}
    rates: dict[str, list[float]] = {name: [] for name in versions}
    try:
        for round_ in range(args.rounds):
            order = list(versions) if round_ % 2 == 0 else list(reversed(versions))
            for name in order:
                settings = topic.replace(
                    consumer_group=f"{run_id}-{round_}-{len(rates[name])}-{name[:4]}",
                    redis_prefix=f"{run_id}-{round_}-{name[:4]}",
                )
                say(f"round {round_ + 1}: {name}")
                run = run_workers(
                    client,
                    settings,
                    filled.last_offsets,
                    1,
                    work,
                    name,
                    timeout,
                    code=versions[name],
                )
                rates[name].append(run.contender.rate)
    finally:
        asyncio.run(delete_run_topics(base.kafka_bootstrap, run_id))
        for key in client.scan_iter(f"{run_id}*", count=10_000):
            client.delete(key)
    table = Table(
        f"kpi worker, {args.events:,} page views, 4 partitions, {args.rounds} rounds",
        ["version", *[f"round {i + 1}" for i in range(args.rounds)], "median events/s"],
    )
    medians = {name: statistics.median(values) for name, values in rates.items()}
    for name, values in rates.items():
        table.add(name, *(number(v) for v in values), number(medians[name]))
    this, other = medians.values()
    print(machine())
    print(table.text())
    print(f"this / other: {this / other:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
