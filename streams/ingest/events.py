"""Event schema (version 1) and the reference decoder, which defines what is accepted.

Every event is a JSON object with ``type``, ``event_id`` and ``event_time`` (ISO
8601 with an offset, or epoch milliseconds), an optional ``schema`` (1), plus the
fields its type declares in :data:`EVENT_TYPES`. Each type travels on one topic
kind and is keyed by one field, so that the state a KPI needs (a visitor's
session, a conversation) lives on one partition. ``docs/events.md`` is generated
from these specs (``kpi docs``).

:func:`decode` never raises on bad input: it returns a :class:`Rejection` with a
:class:`RejectReason`, so one bad message cannot stop a batch. Label fields are
mapped onto their allow-lists here (anything else becomes ``other``), and money
becomes integer cents, so sums are exact. The pipeline (live and replay) runs
:class:`streams.ingest.decoder.Decoder`, a compiled fast path built from the same
specs that hands every message it does not accept outright to :func:`decode`, so
both give the same result.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import orjson

SCHEMA_VERSION = 1
MAX_TEXT_LENGTH = 512
MAX_ITEMS = 100
MAX_MONEY = 100_000_000  # one event never moves more than 100 million
MAX_COUNT = 1_000_000_000


class TopicKind(enum.StrEnum):
    """The four input topics, by role (their names are settings)."""

    CLICKSTREAM = "clickstream"
    ORDERS = "orders"
    CHAT = "chat"
    MARKETING = "marketing"


class RejectReason(enum.StrEnum):
    """Why an event was refused; also the ``reason`` label of the rejected counter."""

    OVERSIZE = "oversize"
    MALFORMED_JSON = "malformed_json"
    NOT_AN_OBJECT = "not_an_object"
    UNSUPPORTED_SCHEMA = "unsupported_schema"
    UNKNOWN_TYPE = "unknown_type"
    WRONG_TOPIC = "wrong_topic"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    OUT_OF_RANGE = "out_of_range"
    BAD_TIMESTAMP = "bad_timestamp"
    TOO_OLD = "too_old"
    TOO_FAR_IN_FUTURE = "too_far_in_future"
    DUPLICATE_EVENT_ID = "duplicate_event_id"
    DUPLICATE_ORDER_EVENT = "duplicate_order_event"


class Kind(enum.Enum):
    """How a field is validated and normalised."""

    ID = "id"  # non-empty string, at most MAX_TEXT_LENGTH
    TEXT = "text"  # string, at most MAX_TEXT_LENGTH
    LABEL = "label"  # string mapped onto an allow-list (else "other")
    MONEY = "money"  # finite number 0..MAX_MONEY, stored as integer cents
    COUNT = "count"  # integer 0..MAX_COUNT
    RATING = "rating"  # integer 1..5
    FLAG = "flag"  # boolean
    TIME = "time"  # like event_time, stored as epoch ms
    ITEMS = "items"  # list of order lines


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of an event type."""

    kind: Kind
    required: bool = True
    allow_list: str = ""  # name of the allow-list of a LABEL field
    doc: str = ""


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One event type: its topic, partition key and fields."""

    topic: TopicKind
    key: str
    """The field whose value keys the Kafka message; ``a|b``: ``a`` when present, else ``b``."""
    fields: Mapping[str, FieldSpec]
    doc: str


def _f(kind: Kind, doc: str = "", allow_list: str = "") -> FieldSpec:
    return FieldSpec(kind, True, allow_list, doc)


def _opt(kind: Kind, doc: str = "", allow_list: str = "") -> FieldSpec:
    return FieldSpec(kind, False, allow_list, doc)


_VISIT = {
    "visitor_id": _f(Kind.ID, "anonymous visitor (cookie or device id)"),
    "session_id": _opt(
        Kind.ID, "front-end session id (informative; sessions are cut by inactivity)"
    ),
    "channel": _f(Kind.LABEL, "traffic channel from utm_source / referrer", "channels"),
    "campaign": _opt(Kind.LABEL, "campaign code", "campaigns"),
    "device": _opt(Kind.LABEL, "app, mobile_web or pc", "devices"),
}
_PRODUCT = {
    "product_id": _opt(Kind.ID, "product (SKU or SPU)"),
    "category": _opt(Kind.TEXT, "category path or code"),
    "brand": _opt(Kind.TEXT, "brand name"),
}
BUYER_KEY = "member_id|visitor_id"
"""The orders topic's partition key: the buyer, their member id if they are a member, else
their visitor id. A member's orders from two devices (two visitor ids) then meet on one
partition, where their repeat purchase is counted (:data:`EventSpec.key`)."""
_ORDER = {
    "visitor_id": _f(Kind.ID, "the buyer's visitor id (links to the clickstream)"),
    "member_id": _opt(Kind.ID, "the buyer's member id (the partition key when present)"),
    "order_id": _f(Kind.ID, "order"),
}
_ATTRIBUTION = {
    "channel": _f(Kind.LABEL, "channel the shop attributes the order to", "channels"),
    "campaign": _opt(Kind.LABEL, "campaign the order belongs to", "campaigns"),
}
_CHAT = {
    "conversation_id": _f(Kind.ID, "conversation (partition key)"),
}

EVENT_TYPES: dict[str, EventSpec] = {
    "page_view": EventSpec(
        TopicKind.CLICKSTREAM,
        "visitor_id",
        {
            **_VISIT,
            "page": _f(Kind.TEXT, "URL path"),
            "page_type": _f(Kind.LABEL, "kind of page", "page_types"),
            **_PRODUCT,
        },
        "A page was shown to a visitor.",
    ),
    "click": EventSpec(
        TopicKind.CLICKSTREAM,
        "visitor_id",
        {
            **_VISIT,
            "page": _f(Kind.TEXT, "page the click happened on"),
            "page_type": _f(Kind.LABEL, "kind of page clicked on", "page_types"),
            **_PRODUCT,
        },
        "A visitor clicked a product, category, brand or campaign element.",
    ),
    "add_to_cart": EventSpec(
        TopicKind.CLICKSTREAM,
        "visitor_id",
        {**_VISIT, **_PRODUCT, "quantity": _opt(Kind.COUNT, "units added")},
        "A product was put into the cart.",
    ),
    "ad_impression": EventSpec(
        TopicKind.CLICKSTREAM,
        "visitor_id",
        {**_VISIT, "count": _opt(Kind.COUNT, "impressions this event stands for (default 1)")},
        "An ad of ours was shown (to a visitor, or a count reported by the ad network).",
    ),
    "registration": EventSpec(
        TopicKind.CLICKSTREAM,
        "visitor_id",
        {**_VISIT, "member_id": _f(Kind.ID, "the new member")},
        "A visitor registered as a member.",
    ),
    "login": EventSpec(
        TopicKind.CLICKSTREAM,
        "visitor_id",
        {**_VISIT, "member_id": _f(Kind.ID, "the member")},
        "A member logged in.",
    ),
    "order_created": EventSpec(
        TopicKind.ORDERS,
        BUYER_KEY,
        {
            **_ORDER,
            **_ATTRIBUTION,
            "amount": _f(Kind.MONEY, "order total"),
            "items": _opt(Kind.ITEMS, "order lines"),
        },
        "An order was placed (not yet paid).",
    ),
    "order_paid": EventSpec(
        TopicKind.ORDERS,
        BUYER_KEY,
        {
            **_ORDER,
            **_ATTRIBUTION,
            "amount": _f(Kind.MONEY, "amount paid"),
            "items": _opt(Kind.ITEMS, "order lines"),
            "member_registered_at": _opt(Kind.TIME, "when the buyer became a member"),
        },
        "An order was paid; GMV counts at payment time.",
    ),
    "order_cancelled": EventSpec(
        TopicKind.ORDERS, BUYER_KEY, {**_ORDER, **_ATTRIBUTION}, "An order was cancelled."
    ),
    "order_refunded": EventSpec(
        TopicKind.ORDERS,
        BUYER_KEY,
        {
            **_ORDER,
            **_ATTRIBUTION,
            "amount": _f(Kind.MONEY, "amount refunded"),
            "returned": _opt(Kind.FLAG, "goods were returned (else a refund only)"),
        },
        "A paid order was refunded or returned.",
    ),
    "review": EventSpec(
        TopicKind.ORDERS,
        BUYER_KEY,
        {**_ORDER, "rating": _f(Kind.RATING, "1 to 5 stars; 4 and 5 are good reviews")},
        "A buyer reviewed an order.",
    ),
    "customer_message": EventSpec(
        TopicKind.CHAT,
        "conversation_id",
        {**_CHAT, "customer_id": _opt(Kind.ID, "customer (member or visitor id)")},
        "A customer wrote in a conversation.",
    ),
    "agent_message": EventSpec(
        TopicKind.CHAT,
        "conversation_id",
        {**_CHAT, "agent_id": _f(Kind.ID, "the human agent")},
        "A human agent replied.",
    ),
    "bot_message": EventSpec(
        TopicKind.CHAT,
        "conversation_id",
        dict(_CHAT),
        "The bot replied (does not count as a response).",
    ),
    "conversation_closed": EventSpec(
        TopicKind.CHAT,
        "conversation_id",
        dict(_CHAT),
        "The conversation ended.",
    ),
    "complaint_opened": EventSpec(
        TopicKind.CHAT,
        "conversation_id",
        {**_CHAT, "complaint_id": _f(Kind.ID, "complaint")},
        "A complaint was filed in a conversation.",
    ),
    "complaint_resolved": EventSpec(
        TopicKind.CHAT,
        "conversation_id",
        {
            **_CHAT,
            "complaint_id": _f(Kind.ID, "complaint"),
            "satisfied": _f(Kind.FLAG, "the customer was satisfied with the outcome"),
        },
        "A complaint was resolved.",
    ),
    "stock_snapshot": EventSpec(
        TopicKind.ORDERS,
        "warehouse_id",
        {
            "warehouse_id": _f(Kind.ID, "warehouse (partition key)"),
            "stock_value": _f(Kind.MONEY, "value of the warehouse's whole stock at event_time"),
        },
        "The stock value of one warehouse at a moment (send one per warehouse at a steady "
        "cadence, e.g. hourly); feeds stock turnover.",
    ),
    "cost_report": EventSpec(
        TopicKind.MARKETING,
        "channel",
        {
            "channel": _f(Kind.LABEL, "channel the money was spent on", "channels"),
            "campaign": _opt(Kind.LABEL, "campaign the money was spent on", "campaigns"),
            "spend": _f(Kind.MONEY, "spend in the reported interval"),
            "impressions": _opt(Kind.COUNT, "ad impressions in the interval"),
        },
        "Marketing spend (and impressions) for an interval ending at event_time.",
    ),
}

ITEM_FIELDS = {
    "product_id": Kind.ID,
    "category": Kind.TEXT,
    "brand": Kind.TEXT,
    "quantity": Kind.COUNT,
    "amount": Kind.MONEY,
    "cost": Kind.MONEY,
}
ITEM_REQUIRED = ("product_id", "amount")
"""The fields every order line must have."""


@dataclass(frozen=True, slots=True)
class OrderLine:
    """One line of an order."""

    product_id: str
    category: str
    brand: str
    quantity: int
    amount_cents: int
    cost_cents: int = 0


class Event(msgspec.Struct, frozen=True, gc=False):
    """A validated event: type, id, event time and its normalised fields.

    A msgspec struct rather than a frozen dataclass: one is built per message, and a
    struct's ``__init__`` runs in C (0.04 against 0.5 µs).
    """

    type: str
    event_id: str
    event_ms: int
    attrs: Mapping[str, Any]

    def text(self, name: str) -> str:
        """A string field ("" when absent)."""
        value = self.attrs.get(name)
        return value if isinstance(value, str) else ""

    def number(self, name: str, default: int = 0) -> int:
        """An integer field (money in cents, counts, ratings, times in ms)."""
        value = self.attrs.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else default

    def flag(self, name: str) -> bool:
        """A boolean field (False when absent)."""
        return self.attrs.get(name) is True

    def items(self) -> tuple[OrderLine, ...]:
        """Order lines (empty when absent)."""
        value = self.attrs.get("items")
        return value if isinstance(value, tuple) else ()


@dataclass(frozen=True, slots=True)
class Rejection:
    """A refused event: the reason label and a human-readable detail."""

    reason: RejectReason
    detail: str


PageView = Event  # an older name of a decoded event; nothing in the service uses it


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """What the decoder accepts; built from settings by the caller."""

    allow_lists: Mapping[str, frozenset[str]]
    max_event_bytes: int
    max_future_skew_ms: int
    max_age_ms: int


class _Invalid(ValueError):
    def __init__(self, reason: RejectReason, detail: str) -> None:
        self.reason = reason
        self.detail = detail


def decode(
    raw: bytes, limits: DecodeLimits, now_ms: int, topic: TopicKind = TopicKind.CLICKSTREAM
) -> Event | Rejection:
    """Validate one raw message from ``topic``; ``now_ms`` bounds accepted event times."""
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
    type_name = event_type if isinstance(event_type, str) else ""
    spec = EVENT_TYPES.get(type_name)
    if spec is None:
        return Rejection(RejectReason.UNKNOWN_TYPE, f"type {event_type!r}"[:200])
    if spec.topic is not topic:
        return Rejection(RejectReason.WRONG_TOPIC, f"{event_type} belongs on {spec.topic}")
    try:
        event_id = _validate(doc.get("event_id"), FieldSpec(Kind.ID), "event_id", limits)
        event_ms = _validate(doc.get("event_time"), FieldSpec(Kind.TIME), "event_time", limits)
        attrs = {
            name: _validate(doc.get(name), field, name, limits)
            for name, field in spec.fields.items()
        }
    except _Invalid as exc:
        return Rejection(exc.reason, exc.detail)
    if event_ms > now_ms + limits.max_future_skew_ms:
        return Rejection(RejectReason.TOO_FAR_IN_FUTURE, f"{event_ms - now_ms} ms ahead")
    if event_ms < now_ms - limits.max_age_ms:
        return Rejection(RejectReason.TOO_OLD, _too_old(event_ms, now_ms))
    return Event(type_name, event_id, event_ms, attrs)


SECONDS_NOT_MS_BELOW = 100_000_000_000
"""``event_time`` values below this (3 March 1973 in milliseconds) that are within the
retention when read as seconds are named as seconds: a producer sending epoch seconds
is the likely cause."""


def _too_old(event_ms: int, now_ms: int) -> str:
    """The rejection's detail, with a hint when the time reads right in seconds."""
    detail = f"{now_ms - event_ms} ms old"
    if 0 < event_ms < SECONDS_NOT_MS_BELOW and abs(now_ms - event_ms * 1000) < 400 * 86_400_000:
        return f"{detail}; event_time {event_ms} looks like epoch seconds: send milliseconds"
    return detail


def _validate(value: object, field: FieldSpec, name: str, limits: DecodeLimits) -> Any:
    if value is None:
        if field.required:
            raise _Invalid(RejectReason.MISSING_FIELD, name)
        return None
    kind = field.kind
    if kind in (Kind.ID, Kind.TEXT, Kind.LABEL):
        if not isinstance(value, str) or len(value) > MAX_TEXT_LENGTH:
            raise _Invalid(RejectReason.WRONG_TYPE, f"{name} must be a string")
        if kind is Kind.ID and not value:
            raise _Invalid(RejectReason.WRONG_TYPE, f"{name} must not be empty")
        if kind is Kind.LABEL:
            if not value:
                return "other" if field.required else None
            return value if value in limits.allow_lists.get(field.allow_list, ()) else "other"
        return value
    if kind is Kind.MONEY:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise _Invalid(RejectReason.WRONG_TYPE, f"{name} must be a number")
        if not math.isfinite(value) or value < 0 or value > MAX_MONEY:
            raise _Invalid(RejectReason.OUT_OF_RANGE, f"{name}={value!r}")
        return round(value * 100)
    if kind is Kind.COUNT or kind is Kind.RATING:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _Invalid(RejectReason.WRONG_TYPE, f"{name} must be an integer")
        low, high = (1, 5) if kind is Kind.RATING else (0, MAX_COUNT)
        if not low <= value <= high:
            raise _Invalid(RejectReason.OUT_OF_RANGE, f"{name}={value}")
        return value
    if kind is Kind.FLAG:
        if not isinstance(value, bool):
            raise _Invalid(RejectReason.WRONG_TYPE, f"{name} must be true or false")
        return value
    if kind is Kind.TIME:
        return parse_time(value, name)
    if kind is Kind.ITEMS:
        return parse_items(value, name, limits)
    raise AssertionError(kind)


def parse_time(value: object, name: str) -> int:
    """Epoch ms of an ISO 8601 time with an offset, or of epoch ms.

    Otherwise raises a ``ValueError`` that carries the refusal reason (``bad_timestamp``
    or ``wrong_type``).
    """
    if isinstance(value, str):
        fast = iso_ms(value)
        if fast is not None:
            return fast
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise _Invalid(
                RejectReason.BAD_TIMESTAMP, f"{name} not ISO 8601: {value[:64]!r}"
            ) from None
        if moment.tzinfo is None:
            raise _Invalid(RejectReason.BAD_TIMESTAMP, f"{name} needs a UTC offset")
        return round(moment.timestamp() * 1000)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or abs(value) > 1e15:
            raise _Invalid(RejectReason.BAD_TIMESTAMP, f"{name} out of range")
        return int(value)
    raise _Invalid(RejectReason.WRONG_TYPE, f"{name} must be a string or a number")


_SECOND_STARTS: dict[str, int | None] = {}
"""``YYYY-MM-DDTHH:MM:SS`` and offset -> epoch ms of that second (None: not a valid time)."""


def iso_ms(text: str) -> int | None:
    """Epoch ms of ``YYYY-MM-DDTHH:MM:SS.fff`` with ``Z`` or ``±HH:MM``, else None.

    The form nearly every producer sends, parsed without ``datetime`` per message:
    the second (date, time and offset) is parsed once by ``datetime.fromisoformat``
    and cached, the milliseconds are added as an integer. Equal to
    ``round(datetime.fromisoformat(text).timestamp() * 1000)`` wherever it answers (a
    property test compares them); None leaves the text to it.
    """
    size = len(text)
    if not (
        (size == 29 and text[23] in "+-" and text[26] == ":") or (size == 24 and text[23] == "Z")
    ):
        return None
    if text[4] != "-" or text[7] != "-" or text[10] != "T" or text[13] != ":":
        return None
    if text[16] != ":" or text[19] != ".":
        return None
    millis = text[20:23]
    if not (millis.isdigit() and millis.isascii()):
        return None
    key = text[:19] + text[23:]
    start = _SECOND_STARTS.get(key, -1)
    if start == -1:
        start = None
        try:
            moment = datetime.fromisoformat(key)
        except ValueError:
            pass
        else:
            if moment.tzinfo is not None:
                start = round(moment.timestamp() * 1000)
        if len(_SECOND_STARTS) >= 100_000:
            _SECOND_STARTS.clear()
        _SECOND_STARTS[key] = start
    if start is None:
        return None
    return start + int(millis)


def parse_items(value: object, name: str, limits: DecodeLimits) -> tuple[OrderLine, ...]:
    """Validated order lines; otherwise a ``ValueError`` carrying the refusal reason."""
    if not isinstance(value, list) or len(value) > MAX_ITEMS:
        raise _Invalid(RejectReason.WRONG_TYPE, f"{name} must be a list of at most {MAX_ITEMS}")
    lines = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise _Invalid(RejectReason.WRONG_TYPE, f"{name}[{index}] must be an object")
        parsed = {
            key: _validate(
                item.get(key),
                FieldSpec(kind, key in ITEM_REQUIRED),
                f"{name}[{index}].{key}",
                limits,
            )
            for key, kind in ITEM_FIELDS.items()
        }
        lines.append(
            OrderLine(
                parsed["product_id"],
                parsed["category"] or "",
                parsed["brand"] or "",
                1 if parsed["quantity"] is None else parsed["quantity"],
                parsed["amount"],
                parsed["cost"] or 0,
            )
        )
    return tuple(lines)


def encode(event: dict[str, object]) -> bytes:
    """Serialise an event document as compact JSON, for code that produces events.

    Nothing in the service calls it; the load generators keep their own encoders.
    """
    return orjson.dumps(event)
