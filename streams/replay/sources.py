"""Where replayed records come from, each with a stable position.

A file source is read in order; every record of one topic kind gets the next
sequence number of that kind, which becomes its offset in a *replay shard*
(``<topic>@<source id>``, partition 0). Replaying the same input again yields
the same offsets, so the sink's offset guard makes the replay idempotent and
an interrupted replay resumable. The source id is derived from the files'
names and sizes (not their folder), or given by the operator.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, NamedTuple

import orjson

from streams.common.errors import KpiError
from streams.ingest.events import EVENT_TYPES, TopicKind


class SourceError(KpiError):
    """A replay input cannot be read (missing file, unknown kind, bad header)."""


class SourceRecord(NamedTuple):
    """One raw event with the file and line it came from (a named tuple: one per line)."""

    kind: TopicKind
    value: bytes
    file: str
    line: int
    problem: str = ""
    """Why the source could not make an event of the line (then ``value`` is refused)."""

    @property
    def location(self) -> str:
        """``file:line``, for reports of rejected lines."""
        return f"{self.file}:{self.line}"


_KIND_IN_NAME = re.compile(r"^(clickstream|orders|chat|marketing)\b")


def kind_of_file(path: Path) -> TopicKind | None:
    """Topic kind from a file name such as ``clickstream-2026-11-11.jsonl.gz``."""
    match = _KIND_IN_NAME.match(path.name)
    return TopicKind(match.group(1)) if match else None


def expand(paths: Sequence[Path]) -> list[Path]:
    """Files of the given paths (folders are read in name order)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        elif path.is_file():
            files.append(path)
        else:
            raise SourceError(f"no such file or folder: {path}")
    if not files:
        raise SourceError("no input files")
    return files


def source_id(files: Sequence[Path], history: bool = False) -> str:
    """Stable id of an input: its file names and sizes (moving the folder keeps it).

    A history replay of the same files is a source of its own: the same files replayed
    without ``--history`` first, every record rejected as too old, have their offsets
    stored as applied, which would otherwise hold the history replay back.
    """
    digest = hashlib.sha1(usedforsecurity=False)
    if history:
        digest.update(b"history\0")
    for path in files:
        digest.update(f"{path.name}\0{path.stat().st_size}\0".encode())
    return digest.hexdigest()[:12]


class _Counting(io.RawIOBase):
    """Counts the bytes read from the underlying (possibly compressed) file."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.bytes_read += n
        return n


@dataclass
class Progress:
    """Bytes of input consumed so far, out of the total."""

    total_bytes: int
    done_bytes: int = 0


def _open(path: Path, counter: _Counting) -> BinaryIO:
    stream: BinaryIO = io.BufferedReader(counter, buffer_size=1 << 20)
    if path.suffix == ".gz":
        return gzip.GzipFile(fileobj=stream)  # type: ignore[return-value]
    return stream


def jsonl_records(
    files: Sequence[Path], progress: Progress, kind: TopicKind | None = None
) -> Iterator[SourceRecord]:
    """Every non-empty line of JSON Lines files (plain or ``.gz``)."""
    base = 0
    for path in files:
        file_kind = kind or kind_of_file(path)
        if file_kind is None:
            raise SourceError(
                f"{path}: cannot tell the topic from the name; name it clickstream*, orders*, "
                "chat* or marketing*, or pass --kind"
            )
        name = str(path)
        with path.open("rb") as handle:
            counter = _Counting(handle)
            stream = _open(path, counter)
            for number, line in enumerate(stream, 1):
                progress.done_bytes = base + counter.bytes_read
                line = line.rstrip(b"\r\n")
                if line.strip():
                    yield SourceRecord(file_kind, line, name, number)
        base += path.stat().st_size
        progress.done_bytes = base


REES46_COLUMNS = (
    "event_time",
    "event_type",
    "product_id",
    "category_id",
    "category_code",
    "brand",
    "price",
    "user_id",
    "user_session",
)


def rees46_records(files: Sequence[Path], progress: Progress) -> Iterator[SourceRecord]:
    """Events of the REES46 "eCommerce behavior data from multi category store" CSV.

    ``view`` -> page_view (product page), ``cart`` -> add_to_cart, ``purchase`` ->
    order_created + order_paid (one order per purchase row, priced at ``price``);
    ``remove_from_cart`` has no counterpart and is skipped. The data carry no
    traffic channel, so every visit counts under ``other``. See docs/replay.md.
    """
    base = 0
    for path in files:
        with path.open("rb") as handle:
            counter = _Counting(handle)
            text = io.TextIOWrapper(_open(path, counter), encoding="utf-8", newline="")
            reader = csv.reader(text)
            header = next(reader, None)
            if header is None or tuple(h.strip() for h in header) != REES46_COLUMNS:
                raise SourceError(f"{path}: not a REES46 CSV (header {header!r})")
            name = str(path)
            for number, row in enumerate(reader, 2):
                progress.done_bytes = base + counter.bytes_read
                yield from _rees46_events(row, name, number)
        base += path.stat().st_size
        progress.done_bytes = base


def _rees46_time(text: str) -> str:
    # "2019-10-01 00:00:00 UTC" -> ISO 8601 with an offset (bad values stay bad).
    if text.endswith(" UTC"):
        try:
            moment = datetime.fromisoformat(text[:-4].replace(" ", "T") + "+00:00")
        except ValueError:
            return text
        return moment.isoformat()
    return text


def _rees46_events(row: list[str], file: str, line: int) -> Iterator[SourceRecord]:
    at = (file, line)
    if len(row) != len(REES46_COLUMNS):
        # Not JSON on purpose: rejected (malformed_json) in its place, so the offsets of
        # the lines after it stay those of their lines; the report gives the CSV reason.
        problem = f"CSV row of {len(row)} fields, expected {len(REES46_COLUMNS)}"
        yield SourceRecord(
            TopicKind.CLICKSTREAM, b"{" + b",".join(c.encode() for c in row), *at, problem
        )
        return
    when, kind, product, category_id, category_code, brand, price, user, session = row
    common = {
        "schema": 1,
        "event_time": _rees46_time(when),
        "visitor_id": user,
        "channel": "other",
    }
    item = {"product_id": product, "category": category_code or category_id, "brand": brand or None}
    key = f"{user}|{session}|{when}|{product}"
    if kind == "view":
        doc = {
            **common,
            "type": "page_view",
            "event_id": f"v|{key}",
            "session_id": session,
            "page": f"/product/{product}",
            "page_type": "product",
            **item,
        }
        yield SourceRecord(TopicKind.CLICKSTREAM, orjson.dumps(_clean(doc)), *at)
    elif kind == "cart":
        doc = {
            **common,
            "type": "add_to_cart",
            "event_id": f"c|{key}",
            "session_id": session,
            **item,
            "quantity": 1,
        }
        yield SourceRecord(TopicKind.CLICKSTREAM, orjson.dumps(_clean(doc)), *at)
    elif kind == "purchase":
        amount = _number(price)
        order = {**common, "order_id": f"o|{key}", "amount": amount, "member_id": user}
        bought = {**item, "quantity": 1, "amount": amount}
        created = {**order, "type": "order_created", "event_id": f"oc|{key}"}
        paid = {**order, "type": "order_paid", "event_id": f"op|{key}", "items": [_clean(bought)]}
        yield SourceRecord(TopicKind.ORDERS, orjson.dumps(_clean(created)), *at)
        yield SourceRecord(TopicKind.ORDERS, orjson.dumps(_clean(paid)), *at)
    elif kind != "remove_from_cart":
        doc = {**common, "type": kind, "event_id": f"x|{key}"}
        yield SourceRecord(TopicKind.CLICKSTREAM, orjson.dumps(doc), *at)  # unknown_type


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text  # rejected as wrong_type, with its line number


def _clean(doc: Mapping[str, object]) -> dict[str, object]:
    return {k: v for k, v in doc.items() if v not in (None, "")}


def type_kind(event_type: str) -> TopicKind | None:
    """Topic kind of an event type (None when unknown)."""
    spec = EVENT_TYPES.get(event_type)
    return spec.topic if spec else None
