"""The decoder the pipeline runs: a compiled fast path with the reference decoder behind it.

:func:`streams.ingest.events.decode` validates field by field in Python and names
the exact reason of every refusal; it is the definition. Here the same schema
is compiled into msgspec structs (one tagged union per topic), which parse and
type-check a valid message in C several times faster. Anything the fast path
does not accept outright — a refusal of any kind, a timestamp out of bounds,
an oddity such as ``"schema": 1.0``, a message that may nest too deep — goes
through the reference decoder, so both give the same result for every input and
on every Python version (a property test compares them).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal

import msgspec
from msgspec.structs import asdict

from streams.ingest.events import (
    EVENT_TYPES,
    ITEM_FIELDS,
    ITEM_REQUIRED,
    MAX_COUNT,
    MAX_ITEMS,
    MAX_MONEY,
    MAX_TEXT_LENGTH,
    SCHEMA_VERSION,
    DecodeLimits,
    Event,
    FieldSpec,
    Kind,
    Rejection,
    TopicKind,
    decode,
    iso_ms,
    parse_items,
    parse_time,
)

_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TEXT_LENGTH)]
_Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT_LENGTH)]
_Money = Annotated[float, msgspec.Meta(ge=0, le=MAX_MONEY)]
_Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_COUNT)]
_Rating = Annotated[int, msgspec.Meta(ge=1, le=5)]
# A time string is parsed by parse_time, not here; the format only describes it in the
# JSON Schema (extra_json_schema is no constraint: decoding is unchanged).
_Time = Annotated[str, msgspec.Meta(extra_json_schema={"format": "date-time"})] | int | float

_SCALAR_TYPES: dict[Kind, Any] = {
    Kind.ID: _Id,
    Kind.TEXT: _Text,
    Kind.LABEL: _Text,
    Kind.MONEY: _Money,
    Kind.COUNT: _Count,
    Kind.RATING: _Rating,
    Kind.FLAG: bool,
    Kind.TIME: _Time,
}


def _line_schema() -> dict[str, Any]:
    """JSON Schema of one order line, from the fields :func:`parse_items` checks.

    Lines stay ``list[Any]`` on the wire (a struct per line would change what the fast
    path decodes), so this is attached to the list as schema-only metadata, built from
    the same tables and wire types rather than written out.
    """
    line = msgspec.defstruct(
        "OrderLine",
        [
            (name, _SCALAR_TYPES[kind])
            if name in ITEM_REQUIRED
            else (name, _SCALAR_TYPES[kind] | None, None)
            for name, kind in ITEM_FIELDS.items()
        ],
        kw_only=True,
    )
    _, components = msgspec.json.schema_components([line])
    schema: dict[str, Any] = components["OrderLine"]
    del schema["title"]
    return schema


_WIRE_TYPES: dict[Kind, Any] = {
    **_SCALAR_TYPES,
    Kind.ITEMS: Annotated[
        list[Any],
        msgspec.Meta(extra_json_schema={"maxItems": MAX_ITEMS, "items": _line_schema()}),
    ],
}

Convert = Callable[[Any], Any]


class _Fallback(Exception):
    """The fast path declines; the reference decoder decides."""


def _struct(type_name: str, fields: dict[str, FieldSpec]) -> type[msgspec.Struct]:
    """A msgspec struct for one event type (optional fields default to None)."""
    members: list[tuple[str, Any] | tuple[str, Any, Any]] = [
        ("event_id", _Id),
        ("event_time", _Time),
        ("schema", Literal[1], SCHEMA_VERSION),
    ]
    for name, spec in fields.items():
        wire = _WIRE_TYPES[spec.kind]
        members.append((name, wire) if spec.required else (name, wire | None, None))
    # The event's own fields first, in spec order (asdict() keeps them in that order).
    return msgspec.defstruct(
        f"Wire_{type_name}",
        [*members[3:], *members[:3]],
        tag_field="type",
        tag=type_name,
        kw_only=True,
    )


WIRE_STRUCTS: dict[str, type[msgspec.Struct]] = {
    type_name: _struct(type_name, dict(spec.fields)) for type_name, spec in EVENT_TYPES.items()
}
"""The msgspec struct of every event type's JSON, as the fast path decodes it; the JSON
Schemas in ``docs/events.md`` are generated from these (``msgspec.json.schema``)."""


def _time_ms(value: Any) -> int:
    if type(value) is str:
        fast = iso_ms(value)
        if fast is not None:
            return fast
    try:
        return parse_time(value, "event_time")
    except ValueError:
        raise _Fallback from None


_MAX_DEPTH = 1024
"""orjson, under the reference decoder, refuses JSON nested this deep (``malformed_json``,
"recursion depth exceeded"). msgspec has no depth limit of its own: it stops at the
interpreter's recursion limit, which bounds C code by the Python limit (1000) on 3.11 but by
a separate C limit on 3.12 (1500) and 3.13 (10000), so there it would accept what the
reference refuses. Nesting is never deeper than the number of ``[`` and ``{`` bytes, so a
message with fewer of them than this cannot be refused for its depth; any other goes to the
reference decoder, on every Python version."""


def _may_nest_too_deep(raw: bytes) -> bool:
    return len(raw) >= _MAX_DEPTH and raw.count(b"[") + raw.count(b"{") >= _MAX_DEPTH


_NO_TYPE = " no type"
"""Tag of a struct no valid message has, to keep a topic's decoder a tagged union."""


class Decoder:
    """Decodes raw messages of any topic with the limits of one deployment."""

    def __init__(self, limits: DecodeLimits) -> None:
        self.limits = limits
        self._decoders: dict[TopicKind, msgspec.json.Decoder[Any]] = {}
        self._converters: dict[str, list[tuple[str, Convert]]] = {}
        self._labels: dict[str, list[tuple[str, dict[str | None, str | None]]]] = {}
        self._tags: dict[type[msgspec.Struct], str] = {}
        by_topic: dict[TopicKind, list[type[msgspec.Struct]]] = {}
        for type_name, spec in EVENT_TYPES.items():
            fields = dict(spec.fields)
            wire = WIRE_STRUCTS[type_name]
            self._tags[wire] = type_name
            by_topic.setdefault(spec.topic, []).append(wire)
            self._labels[type_name] = [
                (name, self._label_table(field))
                for name, field in fields.items()
                if field.kind is Kind.LABEL
            ]
            self._converters[type_name] = [
                (name, self._converter(name, field))
                for name, field in fields.items()
                if field.kind in (Kind.MONEY, Kind.TIME, Kind.ITEMS)
            ]
        for topic, structs in by_topic.items():
            if len(structs) < 2:
                # A lone tagged struct does not require its tag (a message without
                # ``type`` would pass); in a union, every member's tag is required.
                structs.append(no_type := _struct(_NO_TYPE, {}))
                self._tags[no_type] = _NO_TYPE
            union: Any = functools.reduce(operator.or_, structs)  # a tagged union
            self._decoders[topic] = msgspec.json.Decoder(union)

    def _label_table(self, field: FieldSpec) -> dict[str | None, str | None]:
        """A label's values as the reference decoder normalises them.

        A value missing from the table is off the allow-list: ``"other"``. One lookup per
        label instead of a call.
        """
        allowed = self.limits.allow_lists.get(field.allow_list, frozenset())
        table: dict[str | None, str | None] = {value: value for value in allowed if value}
        table[None] = None
        table[""] = "other" if field.required else None
        return table

    def _converter(self, name: str, field: FieldSpec) -> Convert:
        """Normalise a wire value the way the reference decoder does (None stays None)."""
        if field.kind is Kind.MONEY:
            return lambda v: v if v is None else round(v * 100)
        if field.kind is Kind.TIME:
            return lambda v: v if v is None else _time_ms(v)
        limits = self.limits

        def items(value: Any) -> Any:
            if value is None:
                return None
            try:
                return parse_items(value, name, limits)
            except ValueError:
                raise _Fallback from None

        return items

    def decode(self, raw: bytes, now_ms: int, topic: TopicKind) -> Event | Rejection:
        """Validate one message from ``topic``; the same result as ``events.decode``."""
        limits = self.limits
        if len(raw) <= limits.max_event_bytes and not _may_nest_too_deep(raw):
            try:
                wire = self._decoders[topic].decode(raw)
                type_name = self._tags[type(wire)]
                if type_name == _NO_TYPE:
                    raise _Fallback
                event_ms = _time_ms(wire.event_time)
                if now_ms - limits.max_age_ms <= event_ms <= now_ms + limits.max_future_skew_ms:
                    attrs = asdict(wire)  # the event's fields, then these three:
                    del attrs["event_id"], attrs["event_time"], attrs["schema"]
                    for name, table in self._labels[type_name]:
                        attrs[name] = table.get(attrs[name], "other")
                    for name, convert in self._converters[type_name]:
                        attrs[name] = convert(attrs[name])
                    return Event(type_name, wire.event_id, event_ms, attrs)
            except (msgspec.DecodeError, msgspec.ValidationError, _Fallback, RecursionError):
                pass
        return decode(raw, limits, now_ms, topic)

    def decode_all(
        self, raws: Sequence[bytes], now_ms: int, topic: TopicKind
    ) -> list[Event | Rejection]:
        """Decode a batch of one topic."""
        return [self.decode(raw, now_ms, topic) for raw in raws]
