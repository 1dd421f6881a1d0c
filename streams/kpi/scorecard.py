"""The appraisal scorecard (绩效考核): a live score out of 100 per period, pure.

Targets, weights of the proportional items and the two items entered by a
person come from a TOML file (``KPI_SCORECARD_FILE``), validated at start with
errors that name the period and key. An item whose input is undefined (no
target, a zero denominator, a negative ratio) scores 0 and is reported as
"no data" (``score`` None), never NaN.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from streams.common.errors import KpiError
from streams.kpi.formulas import RATIOS, WindowFigures, growth, ratio

PERIODS = ("day", "week", "month")


class ScorecardError(KpiError):
    """The scorecard file is missing, malformed or out of range."""


@dataclass(frozen=True)
class Targets:
    """One period's targets and person-entered scores (None: not set)."""

    gmv_target: float | None = None
    order_growth_target: float | None = None
    uv_target: float | None = None
    pv_target: float | None = None
    conversion_target: float = 0.35
    complaint_handling_target_seconds: float | None = None
    campaign_participation_target: float | None = None
    campaign_roi_target: float | None = None
    data_analysis: float | None = None
    teamwork: float | None = None


@dataclass(frozen=True, slots=True)
class ItemScore:
    """One line of the scorecard."""

    item: str
    points: float
    score: float | None  # None: no data (counts as 0 in the total)
    value: float | None  # the figure the score was computed from


ITEMS: tuple[tuple[str, float, str], ...] = (
    ("sales_completion", 20, "销售额完成率: 20 x min(1, GMV / target)"),
    ("order_growth", 10, "订单量增长: 10 x min(1, growth / target growth)"),
    ("uv", 8, "UV: 8 x min(1, UV / target)"),
    ("pv", 7, "PV: 7 x min(1, PV / target)"),
    ("conversion", 15, "转化: 15 x min(1, orders per visitor / 35 %)"),
    ("good_review_rate", 5, "好评率: 5 x good-review rate"),
    ("complaint_timeliness", 2, "投诉及时性: 2 if average handling <= target, else 1"),
    ("complaint_satisfaction", 3, "投诉满意度: 3 x satisfaction"),
    (
        "campaign_participation",
        10,
        "活动参与度: 10 x min(1, participation / target), or 10 x participation without a target",
    ),
    ("campaign_roi", 10, "投入产出比: 10 x min(1, ROI / target ROI)"),
    ("data_analysis", 5, "数据分析与报告: entered by a person (0-5)"),
    ("teamwork", 5, "团队协作: entered by a person (0-5)"),
)
POINTS = {name: points for name, points, _ in ITEMS}


def _capped(points: float, value: float | None, target: float | None) -> float | None:
    if value is None or target is None or target <= 0 or value < 0:
        return None
    share = ratio(value, target)
    return None if share is None else points * min(1.0, share)


def _proportional(points: float, value: float | None) -> float | None:
    if value is None or value < 0:
        return None
    return points * min(1.0, value)


def score(current: WindowFigures, previous: WindowFigures, targets: Targets) -> list[ItemScore]:
    """Every item of the scorecard for one period (``previous``: the period before)."""
    r = {name: formula(current) for name, (_, formula) in RATIOS.items()}
    gmv = current.c("gmv_cents") / 100
    change = growth(current.c("orders_paid"), previous.c("orders_paid"))
    uv = float(current.d("uv")) if current.d("uv") else None
    pv = float(current.c("pv"))
    handling = r["complaint_handling_avg_seconds"]
    timeliness: float | None = None
    if handling is not None and targets.complaint_handling_target_seconds is not None:
        timeliness = 2.0 if handling <= targets.complaint_handling_target_seconds else 1.0
    participation = r["campaign_participation"]
    if targets.campaign_participation_target is None:
        campaign = _proportional(10, participation)
    else:
        campaign = _capped(10, participation, targets.campaign_participation_target)
    lines = [
        ItemScore("sales_completion", 20, _capped(20, gmv, targets.gmv_target), gmv),
        ItemScore("order_growth", 10, _capped(10, change, targets.order_growth_target), change),
        ItemScore("uv", 8, _capped(8, uv, targets.uv_target), uv),
        ItemScore("pv", 7, _capped(7, pv, targets.pv_target), pv),
        ItemScore(
            "conversion",
            15,
            _capped(15, r["orders_per_visitor"], targets.conversion_target),
            r["orders_per_visitor"],
        ),
        ItemScore(
            "good_review_rate", 5, _proportional(5, r["good_review_rate"]), r["good_review_rate"]
        ),
        ItemScore("complaint_timeliness", 2, timeliness, handling),
        ItemScore(
            "complaint_satisfaction",
            3,
            _proportional(3, r["complaint_satisfaction"]),
            r["complaint_satisfaction"],
        ),
        ItemScore("campaign_participation", 10, campaign, participation),
        ItemScore(
            "campaign_roi",
            10,
            _capped(10, r["campaign_roi"], targets.campaign_roi_target),
            r["campaign_roi"],
        ),
        ItemScore("data_analysis", 5, targets.data_analysis, targets.data_analysis),
        ItemScore("teamwork", 5, targets.teamwork, targets.teamwork),
    ]
    return lines


def total(lines: list[ItemScore]) -> float:
    """Sum of the scores; items without data count 0."""
    return sum(line.score or 0.0 for line in lines)


def load(path: Path | None) -> dict[str, Targets]:
    """Targets per period from a TOML file (no file: every target unset)."""
    if path is None:
        return {period: Targets() for period in PERIODS}
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScorecardError(f"cannot read scorecard file {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ScorecardError(f"{path}: not valid TOML: {exc}") from exc
    return parse(document, str(path))


def parse(document: Mapping[str, object], source: str = "scorecard") -> dict[str, Targets]:
    """Validate a parsed scorecard document: ``[day]``, ``[week]``, ``[month]`` tables."""
    stray = sorted(set(document) - set(PERIODS))
    if stray:
        raise ScorecardError(f"{source}: unknown section(s) {stray}; use {list(PERIODS)}")
    known = {f.name for f in fields(Targets)}
    out = {}
    for period in PERIODS:
        table = document.get(period, {})
        if not isinstance(table, dict):
            raise ScorecardError(f"{source}: [{period}] must be a table")
        unknown = sorted(set(table) - known)
        if unknown:
            raise ScorecardError(f"{source}: [{period}] unknown key(s) {unknown}")
        values: dict[str, float] = {}
        for key, value in table.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ScorecardError(f"{source}: [{period}] {key} must be a number")
            if value < 0:
                raise ScorecardError(f"{source}: [{period}] {key} must not be negative")
            if key in ("data_analysis", "teamwork") and value > POINTS[key]:
                raise ScorecardError(
                    f"{source}: [{period}] {key} is at most {POINTS[key]:g} points"
                )
            values[key] = float(value)
        out[period] = Targets(**values)
    return out
