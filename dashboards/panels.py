"""Reusable Grafana panel and query builders (grafana-foundation-sdk) for the boards.

Every panel reads the provisioned Prometheus datasource (uid ``prometheus``), so the
boards in :mod:`dashboards.boards` only say what to plot and where.
"""

from __future__ import annotations

from collections.abc import Iterable

from grafana_foundation_sdk.builders import common as c
from grafana_foundation_sdk.builders import dashboard as d
from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as m
from grafana_foundation_sdk.models import prometheus as prom_model

DATASOURCE = m.DataSourceRef(type_val="prometheus", uid="prometheus")


def query(
    expr: str, legend: str = "", instant: bool = False, ref: str = "A"
) -> prometheus.Dataquery:
    """A Prometheus query of a panel."""
    q = prometheus.Dataquery().expr(expr).datasource(DATASOURCE).ref_id(ref)
    if legend:
        q = q.legend_format(legend)
    if instant:
        q = q.instant().format(prom_model.PromQueryFormat.TABLE)
    return q


def thresholds(*steps: tuple[float | None, str]) -> d.ThresholdsConfig:
    """Absolute thresholds, the first step without a value."""
    return (
        d.ThresholdsConfig()
        .mode(m.ThresholdsMode.ABSOLUTE)
        .steps([m.Threshold(value=value, color=color) for value, color in steps])
    )


def big_stat(
    title: str,
    expr: str,
    unit: str,
    x: int,
    y: int,
    w: int = 4,
    h: int = 5,
    steps: tuple[tuple[float | None, str], ...] = ((None, "green"),),
    decimals: int = 0,
) -> stat.Panel:
    """A wall-screen number: large, coloured by thresholds, 'no data' when undefined."""
    return (
        stat.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .with_target(query(expr, instant=True))
        .unit(unit)
        .decimals(decimals)
        .thresholds(thresholds(*steps))
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE)
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
        .no_value("no data")
        .reduce_options(c.ReduceDataOptions().calcs(["lastNotNull"]))
        .grid_pos(m.GridPos(h=h, w=w, x=x, y=y))
    )


def series(
    title: str,
    targets: Iterable[prometheus.Dataquery],
    unit: str,
    x: int,
    y: int,
    w: int = 12,
    h: int = 8,
) -> timeseries.Panel:
    """A time-series panel."""
    panel = timeseries.Panel().title(title).datasource(DATASOURCE).unit(unit).line_width(2)
    for letter, target in zip("ABCDEFGH", targets, strict=False):
        panel = panel.with_target(target.ref_id(letter))
    return panel.grid_pos(m.GridPos(h=h, w=w, x=x, y=y))


def top_table(
    title: str, expr: str, unit: str, x: int, y: int, w: int = 8, h: int = 10
) -> table.Panel:
    """An instant table (rank, item, value)."""
    return (
        table.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .unit(unit)
        .with_target(query(expr, instant=True))
        .grid_pos(m.GridPos(h=h, w=w, x=x, y=y))
    )


def variable(name: str, values: Iterable[str]) -> d.CustomVariable:
    """A drop-down of allow-list values."""
    options = list(values)
    return (
        d.CustomVariable(name)
        .label(name.replace("_", " "))
        .values(",".join(options))
        .current(m.VariableOption(selected=True, text=options[0], value=options[0]))
    )
