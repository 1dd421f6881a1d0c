"""The exported metric names and label names are a contract with dashboards and users' PromQL.

``exported_metrics.txt`` lists every family the exporter can emit with its label names.
A renamed or dropped metric or label fails here, before a dashboard silently shows "no
data"; adding or renaming one is a deliberate edit of that file (and of the dashboards,
alert rules and docs that use it).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from streams.common.keys import Shard, field
from streams.common.timebuckets import BucketClock, Granularity
from streams.kpi.catalogue import COUNTERS, DISTINCT, RANKINGS
from streams.kpi.formulas import WindowFigures
from streams.metrics.families import FamilyBuilder
from streams.metrics.windows import RANKED_WINDOWS, windows_at
from streams.store.reader import ExitPages, Labels, Live, Ops, StoreFigures

CONTRACT = Path(__file__).with_name("exported_metrics.txt")
LABELS = Labels(("search",), ("home",), ("pc",), ("c1",))


def everything() -> StoreFigures:
    """Figures in every window with every part non-zero, rankings, live sets and ops."""
    names = [w.name for w in windows_at(BucketClock("UTC"), 1_000_000.0)]
    counters: Counter[str] = Counter()
    for comp in COUNTERS:
        counters[comp.name] = 10
        for dim in comp.dims:
            counters[field(comp.name, dim, LABELS.values(dim)[0])] = 5
    counters[field("repeat_buyers", "orders", "2")] = 1
    counters[field("visitors_by_views", "views", "1")] = 1
    distinct = {field(c.name, "_all", "_all"): 7 for c in DISTINCT}
    distinct[field("carters_or_orderers", "_all", "_all")] = 9
    for comp in DISTINCT:
        for dim in comp.dims:
            distinct[field(comp.name, dim, LABELS.values(dim)[0])] = 3
    shard = Shard("clicks", 0)
    return StoreFigures(
        1_000_000.0,
        {name: WindowFigures(counters, distinct) for name in names},
        {(w, c.name): Counter({"x": 1}) for w in RANKED_WINDOWS for c in RANKINGS},
        {w: ExitPages(Counter({"/p": 30}), Counter({"/p": 3})) for w in RANKED_WINDOWS},
        Live(["1\x1fc"], ["ann\x1fc"], Counter()),
        Ops(
            Counter({"clicks": 1}),
            Counter({"clicks": 1}),
            Counter({"clicks": 1}),
            Counter({"clicks": 1}),
            Counter({("clicks", "malformed_json"): 1}),
            {shard: 1.0},
            {shard: 1},
            {shard: 1.0},
        ),
    )


def exported() -> list[str]:
    families = FamilyBuilder(LABELS, gmv_targets={Granularity.DAY: 1000.0}).families(everything())
    out = set()
    for family in families:
        label_names = sorted({k for s in family.samples for k in s.labels if k != "le"})
        out.add(f"{family.name} {','.join(label_names)}".rstrip())
    return sorted(out)


def test_exported_names_and_labels_match_the_contract() -> None:
    want = CONTRACT.read_text().split("\n")
    got = exported()
    missing = sorted(set(want) - set(got) - {""})
    added = sorted(set(got) - set(want))
    assert (missing, added) == ([], []), (
        "exported metrics changed: update tests/unit/exported_metrics.txt on purpose, "
        "with the dashboards, alert rules and docs that use them"
    )
