"""The benchmark's tables, as aligned text for the terminal and as Markdown for the docs."""

from __future__ import annotations

import datetime as dt
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Table:
    """A titled table of strings; ``code``: columns shown as code in Markdown."""

    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    code: tuple[int, ...] = ()

    def add(self, *cells: str) -> None:
        """Append a row."""
        self.rows.append(list(cells))

    def text(self) -> str:
        """Aligned columns: first left, the rest right."""
        widths = [
            max(len(row[i]) for row in [self.headers, *self.rows]) for i in range(len(self.headers))
        ]

        def line(row: list[str]) -> str:
            cells = [row[0].ljust(widths[0])] + [
                c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
            ]
            return "  ".join(cells).rstrip()

        return "\n".join([self.title, line(self.headers), *(line(r) for r in self.rows)])

    def markdown(self) -> str:
        """A GitHub table under a level-3 heading; first and last columns left-aligned."""
        head = "| " + " | ".join(self.headers) + " |"
        inner = ["---:"] * (len(self.headers) - 2)
        rule = "|" + "|".join(["---", *inner, "---"]) + "|"
        body = [
            "| " + " | ".join(_cell(c, i in self.code) for i, c in enumerate(row)) + " |"
            for row in self.rows
        ]
        return "\n".join([f"### {self.title}", "", head, rule, *body])


def _cell(text: str, code: bool) -> str:
    """A cell's text as Markdown: ``|`` escaped; ``<`` (``<module>``) not taken for HTML."""
    text = text.replace("|", "\\|")
    return f"`{text}`" if code and text else text.replace("<", "&lt;")


def machine() -> str:
    """One line: cores, CPU model, memory, Python, date (UTC)."""
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = "? GiB"
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{os.cpu_count()} cores ({model}), {memory} RAM, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; run {now}"
    )


def number(value: float, digits: int = 0) -> str:
    """Thousands separators; an em dash for NaN."""
    if value != value:  # NaN
        return "—"
    return f"{value:,.{digits}f}"


def write_markdown(path: Path, header: str, tables: list[Table]) -> None:
    """The run's Markdown file: a header paragraph, then every table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    parts = [f"# Benchmark run\n\n{header}\n", *(t.markdown() + "\n" for t in tables)]
    path.write_text("\n".join(parts))
