"""Event schema (version 1) and the decoder every path uses: live, replay and tests.

A page view travels on the ``clickstream`` topic, keyed by ``visitor_id``::

    {"schema": 1, "type": "page_view", "event_id": "...",
     "event_time": "2026-11-11T20:00:00.123+08:00", "visitor_id": "...", "session_id": "...",
     "page": "/product/123", "page_type": "product",
     "channel": "search", "campaign": "double11", "device": "app"}

``decode`` never raises on bad input: it returns a :class:`Rejection` with a
:class:`RejectReason`, so one bad message cannot stop a batch.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import datetime

import orjson

SCHEMA_VERSION = 1
EVENT_TYPES = frozenset({"page_view"})
_STRING_FIELDS = ("event_id", "visitor_id", "session_id", "page", "page_type", "channel")
_OPTIONAL_STRING_FIELDS = ("campaign", "device")
MAX_ID_LENGTH = 256


class RejectReason(enum.StrEnum):
    """Why an event was refused; also the ``reason`` label of the rejected counter."""

    OVERSIZE = "oversize"
    MALFORMED_JSON = "malformed_json"
    NOT_AN_OBJECT = "not_an_object"
    UNSUPPORTED_SCHEMA = "unsupported_schema"
    UNKNOWN_TYPE = "unknown_type"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    BAD_TIMESTAMP = "bad_timestamp"
    TOO_OLD = "too_old"
    TOO_FAR_IN_FUTURE = "too_far_in_future"


@dataclass(frozen=True, slots=True)
class PageView:
    """A validated page view; labels are already mapped onto the allow-lists."""

    event_id: str
    event_ms: int
    visitor_id: str
    session_id: str
    page: str
    page_type: str
    channel: str
    campaign: str
    device: str


@dataclass(frozen=True, slots=True)
class Rejection:
    """A refused event: the reason label and a human-readable detail."""

    reason: RejectReason
    detail: str


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """What the decoder accepts; built from settings by the caller."""

    channels: frozenset[str]
    page_types: frozenset[str]
    max_event_bytes: int
    max_future_skew_ms: int
    max_age_ms: int


def decode(raw: bytes, limits: DecodeLimits, now_ms: int) -> PageView | Rejection:
    """Validate one raw message; ``now_ms`` bounds accepted event times."""
    if len(raw) > limits.max_event_bytes:
        return Rejection(RejectReason.OVERSIZE, f"{len(raw)} bytes > {limits.max_event_bytes}")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejection(RejectReason.MALFORMED_JSON, str(exc)[:200])
    if not isinstance(doc, dict):
        return Rejection(RejectReason.NOT_AN_OBJECT, type(doc).__name__)
    schema = doc.get("schema", SCHEMA_VERSION)
    if schema != SCHEMA_VERSION or isinstance(schema, bool):
        return Rejection(RejectReason.UNSUPPORTED_SCHEMA, f"schema {schema!r}"[:200])
    event_type = doc.get("type")
    if not isinstance(event_type, str) or event_type not in EVENT_TYPES:
        return Rejection(RejectReason.UNKNOWN_TYPE, f"type {event_type!r}"[:200])
    for name in _STRING_FIELDS:
        value = doc.get(name)
        if value is None:
            return Rejection(RejectReason.MISSING_FIELD, name)
        if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH:
            return Rejection(RejectReason.WRONG_TYPE, f"{name} must be a non-empty string")
    for name in _OPTIONAL_STRING_FIELDS:
        value = doc.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > MAX_ID_LENGTH):
            return Rejection(RejectReason.WRONG_TYPE, f"{name} must be a string")
    event_ms = parse_event_time(doc.get("event_time"))
    if isinstance(event_ms, Rejection):
        return event_ms
    if event_ms > now_ms + limits.max_future_skew_ms:
        return Rejection(RejectReason.TOO_FAR_IN_FUTURE, f"{event_ms - now_ms} ms ahead")
    if event_ms < now_ms - limits.max_age_ms:
        return Rejection(RejectReason.TOO_OLD, f"{now_ms - event_ms} ms old")
    channel = doc["channel"] if doc["channel"] in limits.channels else "other"
    page_type = doc["page_type"] if doc["page_type"] in limits.page_types else "other"
    return PageView(
        event_id=doc["event_id"],
        event_ms=event_ms,
        visitor_id=doc["visitor_id"],
        session_id=doc["session_id"],
        page=doc["page"],
        page_type=page_type,
        channel=channel,
        campaign=doc.get("campaign") or "",
        device=doc.get("device") or "",
    )


def parse_event_time(value: object) -> int | Rejection:
    """Epoch milliseconds from an ISO 8601 string with an offset, or epoch milliseconds."""
    if value is None:
        return Rejection(RejectReason.MISSING_FIELD, "event_time")
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return Rejection(RejectReason.BAD_TIMESTAMP, f"not ISO 8601: {value[:64]!r}")
        if moment.tzinfo is None:
            return Rejection(RejectReason.BAD_TIMESTAMP, "event_time needs a UTC offset")
        return round(moment.timestamp() * 1000)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            return Rejection(RejectReason.BAD_TIMESTAMP, "event_time is not finite")
        return int(value)
    return Rejection(RejectReason.WRONG_TYPE, "event_time must be a string or a number")


def encode_page_view(event: dict[str, object]) -> bytes:
    """Serialise an event document (used by producers and the generator)."""
    return orjson.dumps(event)
