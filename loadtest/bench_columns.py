"""Benchmark: the page-view fold with the standard library against the same group-bys in polars.

    python -m loadtest.bench_columns --batch 5000 --rounds 20

The worker folds each batch's page views as columns
(:class:`streams.aggregators.columns.PageViewColumns`); this measures that fold
against polars doing the same group-bys on the same columns, both ending where
the apply needs them: Python counters and sets per minute and dimension value.
Batches are generated page views (``loadtest.generator``), decoded and split
as the worker splits them. Prints µs per page view, rounds alternating; asserts
nothing. polars comes with the ``bench`` extra.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from typing import Any

from loadtest.generator import generate
from streams.aggregators import ShardMemory
from streams.aggregators.columns import PageViewColumns
from streams.aggregators.context import BatchContext
from streams.aggregators.delta import BatchDelta
from streams.aggregators.traffic import page_view
from streams.common.settings import Settings
from streams.ingest.decoder import Decoder
from streams.ingest.events import Event, TopicKind
from streams.worker.runtime import aggregator, decode_limits

DIMENSIONS = ("channel", "page_type", "device", "campaign")


def columns_of(events: list[Event], now_ms: int) -> PageViewColumns:
    """The columns the worker's page-view handler builds for ``events``."""
    kpis = aggregator(Settings())
    ctx = BatchContext(kpis.clock, kpis.config, BatchDelta(), ShardMemory(), now_ms // 1000)
    for event in events:
        page_view(ctx, event, ctx.retained(event.event_ms))
    return ctx.page_views


def fold_stdlib(columns: PageViewColumns, now_ms: int) -> BatchDelta:
    """The worker's fold."""
    kpis = aggregator(Settings())
    ctx = BatchContext(kpis.clock, kpis.config, BatchDelta(), ShardMemory(), now_ms // 1000)
    delta = ctx.delta
    columns.fold(delta, ctx.retained)
    return delta


def fold_polars(columns: PageViewColumns) -> dict[str, Any]:
    """The same group-bys in polars, turned into Python counters and sets per minute."""
    import polars as pl

    frame = pl.DataFrame(
        {
            "minute": columns.minute,
            "visitor": columns.visitor,
            "page": columns.page,
            **{d: getattr(columns, d) for d in DIMENSIONS},
        }
    )
    out: dict[str, Any] = {}
    out["pv"] = dict(frame.group_by("minute").len().iter_rows())
    for dimension in DIMENSIONS:
        grouped = frame.filter(pl.col(dimension) != "").group_by("minute", dimension).len()
        out[f"pv|{dimension}"] = {(m, v): n for m, v, n in grouped.iter_rows()}
    uv = frame.group_by("minute").agg(pl.col("visitor").unique())
    out["uv"] = {m: set(members) for m, members in uv.iter_rows()}
    for dimension in ("channel", "device", "campaign"):
        grouped = (
            frame.filter(pl.col(dimension) != "")
            .group_by("minute", dimension)
            .agg(pl.col("visitor").unique())
        )
        out[f"uv|{dimension}"] = {(m, v): set(members) for m, v, members in grouped.iter_rows()}
    unique = frame.select("minute", pl.concat_str("visitor", "page", separator="\x1f")).unique()
    out["unique_pv"] = Counter(unique.get_column("minute").to_list())
    ranked = frame.group_by("page").len()
    out["page_views"] = dict(ranked.iter_rows())
    return out


def main(argv: list[str] | None = None) -> int:
    """Time both folds on the same batches and print µs per page view."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=5_000, help="page views per batch")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args(argv)
    try:
        import polars  # noqa: F401
    except ImportError:
        parser.error("polars is not installed (pip install -e '.[bench]')")
    now_ms = int(time.time() * 1000)
    generated = generate(args.batch, now_ms - 60_000, 60, seed=3)
    decoder = Decoder(decode_limits(Settings()))
    events = [
        e
        for e in decoder.decode_all(
            [v for _, v in generated.messages], now_ms, TopicKind.CLICKSTREAM
        )
        if isinstance(e, Event)
    ]
    columns = columns_of(events, now_ms)
    # Same answers first: UV of each minute, both ways.
    stdlib = fold_stdlib(columns, now_ms).distinct
    theirs = fold_polars(columns)["uv"]
    mine = {b.start // 60: m for (b, name), m in stdlib.items() if name == "uv|_all=_all"}
    assert {m: mine.get(m) for m in theirs} == theirs, "the two folds disagree"
    times: dict[str, list[float]] = {"standard library": [], "polars": []}
    for round_ in range(args.rounds):
        order = list(times) if round_ % 2 == 0 else list(reversed(times))
        for name in order:
            started = time.perf_counter()
            if name == "polars":
                fold_polars(columns)
            else:
                fold_stdlib(columns, now_ms)
            times[name].append((time.perf_counter() - started) / len(events) * 1e6)
    print(f"{len(events):,} page views per batch, {args.rounds} rounds, alternating")
    print(f"{'fold':<20}{'median µs/view':>16}{'min':>8}")
    for name, values in times.items():
        print(f"{name:<20}{statistics.median(values):>16.2f}{min(values):>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
