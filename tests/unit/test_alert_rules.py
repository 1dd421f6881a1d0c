"""The Prometheus alert rules: valid, unit-tested with promtool, and documented.

promtool is required: the project's CI installs it, so a missing promtool fails
these tests instead of skipping them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = ROOT / "ops" / "prometheus"
RULES = RULES_DIR / "alerts.yml"
RULE_TESTS = RULES_DIR / "alerts_test.yml"
SEVERITIES = {"page", "ticket"}
ANNOTATIONS = ("summary", "description", "runbook")


def _promtool() -> str:
    path = shutil.which("promtool")
    assert path is not None, "promtool is not on PATH (Debian/Ubuntu: apt-get install prometheus)"
    return path


def _run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_promtool(), *args],
        cwd=RULES_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    output = f"{result.stdout}\n{result.stderr}"
    if result.returncode != 0:
        print(output)
    assert result.returncode == 0, f"{' '.join(result.args)} failed:\n{output}"


def test_promtool_check_rules() -> None:
    _assert_ok(_run_promtool("check", "rules", RULES.name))


def test_promtool_test_rules() -> None:
    _assert_ok(_run_promtool("test", "rules", RULE_TESTS.name))


# The project does not depend on PyYAML, so the rules file is read with a small
# parser for the subset of YAML it uses: block mappings and sequences, plain
# scalars and folded or literal block scalars. With PyYAML installed the result is
# compared with PyYAML's, which keeps this parser honest.

_BLOCK_SCALAR = re.compile(r"^[>|][+-]?$")
_BLOCKS = ("labels:", "annotations:")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _scalar(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _mapping(lines: list[str], start: int, indent: int) -> tuple[dict[str, str], int]:
    """The ``key: value`` pairs indented by ``indent`` from ``start``; returns them and the end."""
    values: dict[str, str] = {}
    i = start
    while i < len(lines):
        line = lines[i]
        if not line.strip() or line.lstrip().startswith("#"):
            i += 1
            continue
        if _indent(line) < indent:
            break
        key, _, value = line.strip().partition(":")
        i += 1
        if _BLOCK_SCALAR.match(value.strip()):
            parts = []
            while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > indent):
                parts.append(lines[i].strip())
                i += 1
            joiner = " " if value.strip().startswith(">") else "\n"
            values[key] = joiner.join(p for p in parts if p)
        else:
            values[key] = _scalar(value)
    return values, i


def _alerts_by_lines(text: str) -> dict[str, dict[str, dict[str, str]]]:
    """Alert name -> {"labels": {...}, "annotations": {...}}."""
    lines = text.splitlines()
    alerts: dict[str, dict[str, dict[str, str]]] = {}
    current: dict[str, dict[str, str]] | None = None
    rule_indent = 0
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        match = re.match(r"- alert:\s*(\S+)", stripped)
        if match:
            rule_indent = _indent(line) + 2
            current = alerts.setdefault(_scalar(match.group(1)), {})
        elif stripped.startswith("- ") and _indent(line) < rule_indent:
            current = None  # the next rule (a recording rule) or group
        elif current is not None and _indent(line) == rule_indent and stripped in _BLOCKS:
            block, i = _mapping(lines, i + 1, rule_indent + 2)
            current[stripped[:-1]] = block
            continue
        i += 1
    return alerts


def _alerts_by_yaml(text: str) -> dict[str, dict[str, dict[str, str]]] | None:
    try:
        import yaml
    except ImportError:
        return None
    document = yaml.safe_load(text)
    return {
        rule["alert"]: {
            "labels": {k: str(v) for k, v in rule.get("labels", {}).items()},
            "annotations": {k: str(v) for k, v in rule.get("annotations", {}).items()},
        }
        for group in document["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def _alerts() -> dict[str, dict[str, dict[str, str]]]:
    text = RULES.read_text(encoding="utf-8")
    alerts = _alerts_by_lines(text)
    by_yaml = _alerts_by_yaml(text)
    if by_yaml is not None:
        assert alerts == by_yaml, "the line-based reading of alerts.yml differs from PyYAML's"
    return alerts


def test_the_rules_file_holds_the_expected_alerts() -> None:
    text = RULES.read_text(encoding="utf-8")
    assert re.search(r"^  - name: shop-kpis$", text, re.MULTILINE)
    assert set(_alerts()) >= {
        "ConversionDropVsLastWeek",
        "GmvStalledDuringCampaign",
        "FirstResponseP90AboveSla",
        "TooManyCustomersWaiting",
        "ConsumerNotKeepingUp",
        "WatermarkDelayHigh",
        "RejectedEventsSpike",
        "ExporterDown",
        "RedisUnreachable",
        "WorkerStalled",
    }


def test_every_alert_has_a_severity_and_its_annotations() -> None:
    problems = []
    for name, rule in _alerts().items():
        severity = rule.get("labels", {}).get("severity")
        if severity not in SEVERITIES:
            problems.append(f"{name}: severity {severity!r} is not one of {sorted(SEVERITIES)}")
        annotations = rule.get("annotations", {})
        for key in ANNOTATIONS:
            if not annotations.get(key, "").strip():
                problems.append(f"{name}: annotation {key!r} is missing or empty")
    assert not problems, "\n".join(problems)


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    lines = RULE_TESTS.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"\s*alertname:\s*(\S+)", line)
        if match is None:
            continue
        following = next((ln.strip() for ln in lines[i + 1 :] if ln.strip()), "")
        if following == "exp_alerts: []":
            quiet.add(match.group(1))
        elif following == "exp_alerts:":
            firing.add(match.group(1))
    alerts = set(_alerts())
    assert not alerts - firing, f"no test where these fire: {sorted(alerts - firing)}"
    assert not alerts - quiet, f"no test where these stay quiet: {sorted(alerts - quiet)}"
