"""The Prometheus text format (0.0.4), written faster than prometheus_client writes it.

A scrape of a busy shop holds thousands of series whose label sets repeat
from one scrape to the next; prometheus_client escapes and sorts every label
set again for every sample, which costs about as much as reading Redis. This
renderer gives byte-for-byte the output of ``prometheus_client.generate_latest``
(a test compares them), with the label strings cached.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString as _go_float

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_TYPES = {"info": "gauge", "stateset": "gauge", "gaugehistogram": "histogram", "unknown": "untyped"}
_OPENMETRICS_SUFFIXES = ("_created", "_gsum", "_gcount")


def _escape_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


@lru_cache(maxsize=1 << 16)
def _label_text(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape_value(v)}"' for k, v in sorted(labels)) + "}"


def render(registry: Collector) -> bytes:
    """Every family of ``registry`` in the text format, as ``generate_latest`` writes it."""
    out: list[str] = []
    for metric in registry.collect():
        name, kind = metric.name, metric.type
        if kind == "counter":
            name += "_total"
        elif kind == "info":
            name += "_info"
        kind = _TYPES.get(kind, kind)
        doc = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {name} {doc}\n# TYPE {name} {kind}\n")
        extra: dict[str, list[str]] = {}
        family = metric.name
        for sample in metric.samples:
            value = sample.value
            # repr is what floatToGoString returns for a finite float below 1e6
            number = (
                repr(value) if type(value) is float and -1e300 < value < 1e6 else _go_float(value)  # type: ignore[no-untyped-call]
            )
            labels = sample.labels
            line = f"{sample.name}{_label_text(tuple(labels.items())) if labels else ''} {number}"
            if sample.timestamp is not None:
                line += f" {int(float(sample.timestamp) * 1000):d}"
            line += "\n"
            if sample.name == family:
                out.append(line)
                continue
            suffix = sample.name[len(family) :] if sample.name.startswith(family) else ""
            if suffix in _OPENMETRICS_SUFFIXES:
                extra.setdefault(suffix, []).append(line)
            else:
                out.append(line)
        for suffix, lines in sorted(extra.items()):
            gauge = metric.name + suffix
            out.append(f"# HELP {gauge} {doc}\n# TYPE {gauge} gauge\n")
            out += lines
    return "".join(out).encode()


def metrics_app(
    registry: Collector,
) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    """A WSGI app answering every request with the rendered registry (gzip when asked)."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = render(registry)
        headers = [("Content-Type", CONTENT_TYPE)]
        if "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
            body = gzip.compress(body, compresslevel=1)
            headers.append(("Content-Encoding", "gzip"))
        start_response("200 OK", headers)
        return [body]

    return app
