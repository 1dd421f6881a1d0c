"""The supported Pythons agree everywhere: requires-python, the classifiers and ./run."""

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
RUN = (ROOT / "run").read_text()
# ./run's functions, from log() to the last one before ensure_bench_extra().
FUNCTIONS = RUN[RUN.index("\nlog() {") : RUN.index("\nensure_bench_extra() {")]


def supported() -> list[str]:
    """The minor versions requires-python allows (">=3.A,<3.B")."""
    match = re.fullmatch(r">=3\.(\d+),<3\.(\d+)", PROJECT["requires-python"])
    assert match is not None, PROJECT["requires-python"]
    low, high = map(int, match.groups())
    return [f"3.{minor}" for minor in range(low, high)]


def test_python_3_11_to_3_13_are_supported() -> None:
    assert supported() == ["3.11", "3.12", "3.13"]
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in supported()


def test_the_classifiers_name_every_supported_version() -> None:
    prefix = "Programming Language :: Python :: "
    named = [c.removeprefix(prefix) for c in PROJECT["classifiers"] if c.startswith(prefix)]
    assert [v for v in named if re.fullmatch(r"3\.\d+", v)] == supported()


def run_function(tmp_path: Path, call: str, **env: str) -> subprocess.CompletedProcess[str]:
    """One of ./run's functions in bash, with only the commands in ``tmp_path`` on PATH."""
    return subprocess.run(
        ["/bin/bash", "-c", f"set -euo pipefail\n{FUNCTIONS}\n{call}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": str(tmp_path), **env},
    )


def pythons(tmp_path: Path, *names: str) -> None:
    """Commands of these names in ``tmp_path``, each this interpreter."""
    for name in names:
        os.symlink(sys.executable, tmp_path / name)


@pytest.mark.parametrize(
    ("installed", "picked"),
    [
        (["python3.11", "python3.12", "python3.13", "python3"], "python3.11"),
        (["python3.12", "python3.13", "python3"], "python3.12"),
        (["python3.13", "python3"], "python3.13"),
        (["python3"], "python3"),
    ],
)
def test_run_picks_the_first_supported_python(
    tmp_path: Path, installed: list[str], picked: str
) -> None:
    pythons(tmp_path, *installed)
    result = run_function(tmp_path, "python_supported")
    assert (result.returncode, result.stdout) == (0, picked + "\n")


def test_run_names_the_supported_versions_when_there_is_none(tmp_path: Path) -> None:
    result = run_function(tmp_path, "python_supported")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "[run] Python 3.11, 3.12 or 3.13 is needed (python3.11, python3.12, python3.13 or python3)"
    ]


@pytest.mark.parametrize(("ci", "returncode"), [("", 0), ("true", 1)])
def test_only_ci_fails_without_python_3_13(tmp_path: Path, ci: str, returncode: int) -> None:
    pythons(tmp_path, "python3.11")
    result = run_function(tmp_path, "unit_tests_313", CI=ci)
    assert result.returncode == returncode
    [line] = result.stderr.splitlines()
    assert line.startswith("[run] Python 3.13 is not installed")
